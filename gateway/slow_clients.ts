/**
 * Cutting off clients that send their headers too slowly. `Deno.serve` has no header timeout
 * (checked on Deno 2.9: a client sending one header byte a second stays connected for good, and
 * node:http's `headersTimeout` is not enforced either), and it never shows the handler a request
 * whose headers have not all arrived. So the gateway listens itself and relays each connection
 * to `Deno.serve` on a private Unix socket, watching the time: from the moment a request may
 * start (the connection opened, or the last response bytes went out) the client has
 * `headerTimeoutMs` to finish its headers (`\r\n\r\n`), or the connection is closed. The clock
 * also closes keep-alive connections left idle that long. Once a head is in, the request (its
 * body, then its answer) has `answerWithinMs`, so no connection is held for good whatever bytes it
 * sends. One shared sweep checks every clock each quarter of the header timeout (a late client is
 * cut off within 1.25 times it), so a request costs no timer of its own. Bodies are also timed by
 * body.ts.
 *
 * The relay also answers repeated cache hits itself (`answer`, HitPath.answerHead): a read that
 * arrives as one complete head while the connection owes the client nothing (gateway/exchanges.ts
 * follows that) is answered with the bytes `Deno.serve` would have written, which saves the hop
 * and half the relay's work on the gateway's commonest request. Everything else is relayed.
 *
 * @example
 * ```ts ignore
 * const server = await serveGuarded({ hostname: "127.0.0.1", port: 8080, headerTimeoutMs: 10_000 },
 *   app.fetch);
 * await server.shutdown();
 * ```
 */

import { Exchanges } from "./exchanges.ts";
import { type RawHead, readHead } from "./raw_head.ts";

export interface GuardOptions {
  hostname: string;
  port: number;
  headerTimeoutMs: number;
  /**
   * How long a request may take once its head is in (its body, then its answer) before the
   * connection is closed; default six times `headerTimeoutMs`. The gateway gives its body
   * timeout plus twice its request timeout plus the header timeout: the longest a request of its
   * own can last. Without it, bytes that looked like the end of a head (in a body, say) stopped
   * the clock, and a connection could be held for good.
   */
  answerWithinMs?: number;
  onListen?: (addr: { hostname: string; port: number }) => void;
  /** The whole answer to a request head (written in order), when the relay may send it itself. */
  answer?: (head: RawHead) => Uint8Array[] | undefined;
}

export interface GuardedServer {
  readonly port: number;
  /** Stops accepting, finishes the requests in flight, then closes every connection. */
  shutdown(): Promise<void>;
}

/**
 * Follows `\r\n\r\n` across chunks: `matched` is how much of it the last chunk ended with.
 * Plain indexed loops: this runs on every chunk a client sends.
 */
function headersEnd(chunk: Uint8Array, matched: number): number {
  for (let i = 0; i < chunk.length; i++) {
    const byte = chunk[i];
    if (byte === (matched & 1 ? 10 : 13)) {
      if (++matched === 4) return 4;
    } else matched = byte === 13 ? 1 : 0;
  }
  return matched;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = await conn.write(bytes);
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/**
 * One relayed connection's clock: `deadline` (ms since epoch) is when the client must have
 * finished its headers (`owesHead`), or else when its request must have been answered. One shared
 * sweep closes the late ones, so a request costs no timer of its own.
 */
interface Clock {
  deadline: number;
  owesHead: boolean;
  close(): void;
}

/** Closes the connections whose deadline has passed, every quarter of the timeout. */
class Sweeper {
  readonly clocks = new Set<Clock>();
  readonly #timer: ReturnType<typeof setInterval>;
  constructor(readonly timeoutMs: number, readonly answerWithinMs: number) {
    this.#timer = setInterval(() => this.#sweep(), Math.max(1, Math.floor(timeoutMs / 4)));
  }
  #sweep(): void {
    const now = Date.now();
    for (const clock of this.clocks) {
      if (clock.deadline <= now) clock.close();
    }
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** A connection's header clock, running from now (the client owes its first headers). */
function startClock(sweeper: Sweeper, conns: Deno.Conn[]): Clock {
  const clock: Clock = {
    deadline: Date.now() + sweeper.timeoutMs,
    owesHead: true,
    close() {
      sweeper.clocks.delete(clock);
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
  sweeper.clocks.add(clock);
  return clock;
}

/**
 * The relay's own answer to `chunk` when it is one head `answer` answers and the connection
 * owes nothing before it; otherwise undefined, and `exchanges` learns what goes on to the server
 * (or stops following).
 */
function ownAnswer(
  chunk: Uint8Array,
  exchanges: Exchanges,
  answer: NonNullable<GuardOptions["answer"]>,
): Uint8Array[] | undefined {
  const head = readHead(chunk);
  const answered = head && exchanges.idle ? answer(head) : undefined;
  if (answered) return answered;
  // A connection that sent a credential (a signed-in client sends it every time) or a body is
  // not followed further: the relay would answer none of its requests, so reading them is waste.
  if (head?.plain) exchanges.sent(head.method);
  else exchanges.stop();
  return undefined;
}

/** One client connection relayed to the inner server under the header clock. */
async function relay(
  client: Deno.Conn,
  socketPath: string,
  sweeper: Sweeper,
  answer: GuardOptions["answer"],
) {
  const upstream = await Deno.connect({ transport: "unix", path: socketPath });
  const { timeoutMs } = sweeper;
  const clock = startClock(sweeper, [client, upstream]);
  let matched = 0;
  // Followed only where the relay may answer: without `answer` there is nothing to follow for.
  const exchanges = answer && new Exchanges();
  const toServer = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await client.read(buffer);
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      const answered = exchanges?.following && answer
        ? ownAnswer(chunk, exchanges, answer)
        : undefined;
      if (answered) {
        for (const part of answered) await writeAll(client, part);
        clock.deadline = Date.now() + timeoutMs;
        continue;
      }
      if (clock.owesHead && (matched = headersEnd(chunk, matched)) === 4) {
        clock.owesHead = false;
        clock.deadline = Date.now() + sweeper.answerWithinMs;
      }
      await writeAll(upstream, chunk);
    }
  })();
  const toClient = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await upstream.read(buffer);
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      await writeAll(client, chunk);
      // Counted once written: an answer the relay makes must not go out beside these bytes.
      if (exchanges?.following) exchanges.received(chunk);
      matched = 0;
      clock.owesHead = true;
      clock.deadline = Date.now() + timeoutMs;
    }
  })();
  await Promise.race([toServer, toClient]).catch(() => {});
  clock.close();
  await Promise.allSettled([toServer, toClient]);
}

/**
 * Accepts connections until the listener is closed. One failed accept must not end the loop: a
 * client that resets its connection while it waits in the backlog makes `accept` throw
 * (NotConnected), and a `for await` over the listener would then stop accepting for good while
 * the port kept listening. Such a client's failure is skipped at once (a pause would let resets
 * slow everyone's accepts); any other (out of file descriptors) waits a moment, so as not to spin.
 */
async function acceptEach(
  listener: Deno.TcpListener,
  serve: (client: Deno.TcpConn) => void,
) {
  for (;;) {
    let client: Deno.TcpConn;
    try {
      client = await listener.accept();
    } catch (error) {
      if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
        return; // the listener was closed
      }
      const clientGone = error instanceof Deno.errors.NotConnected ||
        error instanceof Deno.errors.ConnectionReset ||
        error instanceof Deno.errors.ConnectionAborted;
      if (!clientGone) await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    try {
      client.setNoDelay(true);
    } catch {
      // Reset already: the relay's first read ends it.
    }
    serve(client);
  }
}

/** `Deno.serve` on a Unix socket in a directory of its own, which `shutdown` removes. */
async function innerServer(handler: Deno.ServeHandler<Deno.UnixAddr>) {
  const dir = await Deno.makeTempDir({ prefix: "gateway-" });
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  const socketPath = `${dir}/http.sock`;
  try {
    const server = Deno.serve({ path: socketPath, onListen: () => {} }, handler);
    return {
      socketPath,
      async shutdown() {
        await server.shutdown();
        await remove();
      },
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** Serves `handler` behind the header clock (see the module comment). */
export async function serveGuarded(
  options: GuardOptions,
  handler: Deno.ServeHandler<Deno.UnixAddr>,
): Promise<GuardedServer> {
  // The port first: a port in use (a start-up failure users cause) then leaves nothing behind.
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const inner = await innerServer(handler).catch((error) => {
    listener.close();
    throw error;
  });
  const socketPath = inner.socketPath;
  const addr = listener.addr as Deno.NetAddr;
  options.onListen?.({ hostname: addr.hostname, port: addr.port });
  const connections = new Set<Promise<void>>();
  const sweeper = new Sweeper(
    options.headerTimeoutMs,
    options.answerWithinMs ?? 6 * options.headerTimeoutMs,
  );
  const accepting = acceptEach(listener, (client) => {
    const done = relay(client, socketPath, sweeper, options.answer).catch(() => client.close());
    connections.add(done);
    done.finally(() => connections.delete(done));
  });
  return {
    port: addr.port,
    async shutdown() {
      listener.close();
      await accepting;
      await inner.shutdown();
      sweeper.stop();
    },
  };
}
