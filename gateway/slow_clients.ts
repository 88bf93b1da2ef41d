/**
 * Cutting off clients that send their headers too slowly. `Deno.serve` has no header timeout
 * (checked on Deno 2.9: a client sending one header byte a second stays connected for good, and
 * node:http's `headersTimeout` is not enforced either), and it never shows the handler a request
 * whose headers have not all arrived. So the gateway listens itself and relays each connection
 * to `Deno.serve` on a private Unix socket, watching only one thing: from the moment a request
 * may start (the connection opened, or the last response bytes went out) the client has
 * `headerTimeoutMs` to finish its headers (`\r\n\r\n`), or the connection is closed. The clock
 * also closes keep-alive connections left idle that long. One shared sweep checks every clock each
 * quarter of the timeout (a late client is cut off within 1.25 times it), so a request costs no
 * timer of its own. Bodies are timed by body.ts.
 *
 * @example
 * ```ts ignore
 * const server = await serveGuarded({ hostname: "127.0.0.1", port: 8080, headerTimeoutMs: 10_000 },
 *   app.fetch);
 * await server.shutdown();
 * ```
 */

export interface GuardOptions {
  hostname: string;
  port: number;
  headerTimeoutMs: number;
  onListen?: (addr: { hostname: string; port: number }) => void;
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
 * One relayed connection's header clock: `deadline` (ms since epoch) is when the client must
 * have finished its headers, 0 while it owes none. One shared sweep closes the late ones, so a
 * request costs no timer of its own.
 */
interface Clock {
  deadline: number;
  close(): void;
}

/** Closes the connections whose deadline has passed, every quarter of the timeout. */
class Sweeper {
  readonly clocks = new Set<Clock>();
  readonly #timer: ReturnType<typeof setInterval>;
  constructor(readonly timeoutMs: number) {
    this.#timer = setInterval(() => this.#sweep(), Math.max(1, Math.floor(timeoutMs / 4)));
  }
  #sweep(): void {
    const now = Date.now();
    for (const clock of this.clocks) {
      if (clock.deadline !== 0 && clock.deadline <= now) clock.close();
    }
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** One client connection relayed to the inner server under the header clock. */
async function relay(client: Deno.Conn, socketPath: string, sweeper: Sweeper) {
  const upstream = await Deno.connect({ transport: "unix", path: socketPath });
  const { timeoutMs } = sweeper;
  const clock: Clock = {
    // The client owes headers from now on (a new connection, or a response went out).
    deadline: Date.now() + timeoutMs,
    close() {
      sweeper.clocks.delete(clock);
      for (const conn of [client, upstream]) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
  sweeper.clocks.add(clock);
  let matched = 0;
  const toServer = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await client.read(buffer);
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      if (clock.deadline !== 0 && (matched = headersEnd(chunk, matched)) === 4) {
        clock.deadline = 0;
      }
      await writeAll(upstream, chunk);
    }
  })();
  const toClient = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await upstream.read(buffer);
      if (n === null) break;
      await writeAll(client, buffer.subarray(0, n));
      matched = 0;
      clock.deadline = Date.now() + timeoutMs;
    }
  })();
  await Promise.race([toServer, toClient]).catch(() => {});
  clock.close();
  await Promise.allSettled([toServer, toClient]);
}

/** Serves `handler` behind the header clock (see the module comment). */
export async function serveGuarded(
  options: GuardOptions,
  handler: Deno.ServeHandler<Deno.UnixAddr>,
): Promise<GuardedServer> {
  const dir = await Deno.makeTempDir({ prefix: "gateway-" });
  const socketPath = `${dir}/http.sock`;
  const inner = Deno.serve({ path: socketPath, onListen: () => {} }, handler);
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;
  options.onListen?.({ hostname: addr.hostname, port: addr.port });
  const connections = new Set<Promise<void>>();
  const sweeper = new Sweeper(options.headerTimeoutMs);
  const accepting = (async () => {
    for await (const client of listener) {
      client.setNoDelay(true);
      const done = relay(client, socketPath, sweeper).catch(() => client.close());
      connections.add(done);
      done.finally(() => connections.delete(done));
    }
  })().catch(() => {});
  return {
    port: addr.port,
    async shutdown() {
      listener.close();
      await accepting;
      await inner.shutdown();
      sweeper.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
