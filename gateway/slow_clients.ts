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
 * sends. An interim `100 Continue` does not restart the clock (the body it asks for is still owed),
 * and a request pipelined behind another keeps the answer's time when the first answer goes out.
 * One shared sweep checks every clock each quarter of the header timeout (a late client is cut off
 * within 1.25 times it), so a request costs no timer of its own. Bodies are also timed by body.ts.
 *
 * The relay also answers repeated cache hits and repeated signed-in reads itself (`answer`:
 * HitPath.answerHead, SignedPath.answerHead): a read that arrives as one complete head while the
 * connection owes the client nothing (gateway/exchanges.ts follows that) is answered with the
 * bytes `Deno.serve` would have written, which saves the hop and half the relay's work on the
 * gateway's commonest requests. A signed-in read's answer comes from its service: the connection
 * handles nothing more until it is written (so answers keep their order; a client that leaves
 * meanwhile is let go at once), under the answer's clock.
 * Everything else is relayed.
 *
 * @example
 * ```ts ignore
 * const server = await serveGuarded({ hostname: "127.0.0.1", port: 8080, headerTimeoutMs: 10_000 },
 *   app.fetch);
 * await server.shutdown();
 * ```
 */

import { errorBytes } from "./errors.ts";
import { Exchanges } from "./exchanges.ts";
import { innerServer } from "./inner_socket.ts";
import { headEnd, type RawHead, readHeadAndMore } from "./raw_head.ts";
import { pickRequestId } from "./middleware/request_id.ts";
import { beforeRefusal, SinceAnswer } from "./refused_head.ts";
import { OpenFileRoom, REFUSING_AT_ONCE } from "./open_files.ts";
import { ServiceUnavailableError } from "@shared/errors.ts";

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
  /** `Deno.serve`'s answer to a failure before `handler` runs (gateway/errors.ts: `serveErrors`). */
  onError?: (error: unknown) => Response;
  /**
   * The whole answer to a request head (written in order), when the relay may send it itself;
   * a promise of it when it must be fetched first.
   */
  answer?: (head: RawHead) => Uint8Array[] | Promise<Uint8Array[]> | undefined;
  /**
   * Told the size of each read of a client's bytes as it completes, before the relay acts on it.
   * For tests: how the relay splits what a client sends into reads decides what it does (a head
   * alone is answered here, one read with the next is relayed), and nothing else shows when it
   * has taken bytes, so a test that needs two writes read apart waits on this instead of pausing.
   */
  onClientRead?: (bytes: number) => void;
  /**
   * Told when the relay starts refusing new connections for want of descriptors (`full` true:
   * the open-file limit leaves room for no more) and when it takes them again, once each time.
   */
  onFull?: (full: boolean, figures: { connections: number; most?: number }) => void;
}

export interface GuardedServer {
  readonly port: number;
  /** Stops accepting, finishes the requests in flight, then closes every connection. */
  shutdown(): Promise<void>;
}

/**
 * Counts the ends of heads (`\r\n\r\n`) in what a client sends, across chunks. A body may hold
 * such bytes too, so the count is an upper bound on the heads sent: good enough for a clock that
 * only ever gives the client more time for a request it may have sent (see `relay`), never for
 * good. A plain indexed loop: this runs on every chunk a client sends.
 */
class HeadEnds {
  /** How much of `\r\n\r\n` the bytes so far ended with. */
  #matched = 0;

  /** How many heads `chunk` ends. */
  count(chunk: Uint8Array): number {
    let matched = this.#matched;
    let ends = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === (matched & 1 ? 10 : 13)) {
        if (++matched === 4) {
          ends++;
          matched = 0;
        }
      } else matched = byte === 13 ? 1 : 0;
    }
    this.#matched = matched;
    return ends;
  }
}

const INTERIM = new TextEncoder().encode("HTTP/1.1 1");

/**
 * Whether `chunk` of the server's answers is an interim answer alone (`100 Continue`, which
 * `Deno.serve` writes by itself when the handler starts reading a body the client holds back for
 * it): the request is still owed its body and its answer, so the clock goes on as it was.
 */
function isInterimAlone(chunk: Uint8Array): boolean {
  if (chunk.length < INTERIM.length + 4) return false;
  for (let i = 0; i < INTERIM.length; i++) if (chunk[i] !== INTERIM[i]) return false;
  const n = chunk.length;
  if (chunk[n - 4] !== 13 || chunk[n - 3] !== 10 || chunk[n - 2] !== 13 || chunk[n - 1] !== 10) {
    return false;
  }
  for (let i = INTERIM.length; i < n - 4; i++) {
    if (chunk[i] === 13 && chunk[i + 1] === 10 && chunk[i + 2] === 13) return false;
  }
  return true;
}

/**
 * HTTP/2's connection preface (RFC 9113 §3.4). `Deno.serve` speaks h2c to a client that opens
 * with it, and the relay's clock reads HTTP/1.1 heads: every PING's answer gave such a connection
 * the header timeout again, so one that never sent a request stayed open for good.
 */
const H2_PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * How much of the HTTP/2 preface a connection's first bytes match once `chunk` is added to the
 * `matched` before it: -1 as soon as one differs (HTTP/1.1, decided by the second byte at most),
 * `H2_PREFACE.length` when all of it came.
 */
function prefaceMatched(chunk: Uint8Array, matched: number): number {
  for (let i = 0; i < chunk.length && matched < H2_PREFACE.length; i++, matched++) {
    if (chunk[i] !== H2_PREFACE[matched]) return -1;
  }
  return matched;
}

/** Writes all of `bytes`, telling `progress` how many each write took. */
async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
  progress?: (bytes: number) => void,
): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const n = await conn.write(written ? bytes.subarray(written) : bytes);
    written += n;
    progress?.(n);
  }
}

/** Closes the connections whose deadline has passed, every quarter of the timeout. */
export class Sweeper {
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

/**
 * One relayed connection's clock, running from its start: `deadline` (ms since epoch) is when
 * the client must have finished its next head (while it owes one), or else when the request in
 * hand must have been answered. The shared sweep closes the late ones, so a request costs no
 * timer of its own.
 */
export class Clock {
  deadline: number;
  #owesHead = true;
  /**
   * Heads that came in while an earlier request was owed its answer (pipelined): as answers go
   * out, each of these is owed one in turn, so its time is the answer's, not the header's.
   */
  #headsAhead = 0;

  constructor(readonly sweeper: Sweeper, readonly conns: Deno.Conn[]) {
    this.deadline = Date.now() + sweeper.timeoutMs;
    sweeper.clocks.add(this);
  }

  /** The client's bytes ended `ends` heads (see `HeadEnds`). */
  headsIn(ends: number): void {
    if (ends > 0 && this.#owesHead) {
      this.#owesHead = false;
      this.deadline = Date.now() + this.sweeper.answerWithinMs;
      this.#headsAhead += ends - 1;
    } else this.#headsAhead += ends;
  }

  /**
   * Answer bytes went out: the clock runs for the next head, with the answer's time while a
   * pipelined request may still be owed one. Either way the next head is watched for again: the
   * count of heads ahead may hold CRLFCRLF of a body, and a count one too high must not keep a
   * connection on the answer's time for good (a review: after one multipart body, idle and slow
   * heads were held 30 s instead of 10). An answer read in several chunks counts once per chunk:
   * that can only cut a pipelined request's time back to the header timeout, as before.
   */
  answered(): void {
    this.#owesHead = true;
    if (this.#headsAhead > 0) {
      this.#headsAhead--;
      this.deadline = Date.now() + this.sweeper.answerWithinMs;
    } else this.deadline = Date.now() + this.sweeper.timeoutMs;
  }

  /** Bytes of an answer the relay writes itself gone out since the clock last moved for them. */
  #writtenSinceProgress = 0;

  /**
   * `bytes` of an answer the relay writes itself went out: with each ANSWER_BUFFER_MAX of them
   * the client may take the header timeout again for the rest, as an answer relayed from
   * `Deno.serve` gets it with each chunk (of at most that size) passed on. Without it a page of
   * about a megabyte read at ~30 kB/s was cut off at the answer's time on the short way only; once
   * per write instead, a client taking a few kilobytes per timeout held a page for many minutes
   * where the long way cut it off (two reviews, 2026-12-03).
   */
  progressed(bytes: number): void {
    this.#writtenSinceProgress += bytes;
    if (this.#writtenSinceProgress < ANSWER_BUFFER_MAX) return;
    this.#writtenSinceProgress = 0;
    this.deadline = Math.max(this.deadline, Date.now() + this.sweeper.timeoutMs);
  }

  close(): void {
    this.sweeper.clocks.delete(this);
    for (const conn of this.conns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }
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
): ReturnType<NonNullable<GuardOptions["answer"]>> {
  if (exchanges.inBody) {
    exchanges.bodySent(chunk.length);
    return undefined;
  }
  const read = readHeadAndMore(chunk);
  const head = read?.head;
  const alone = read?.more === 0;
  const answered = head && alone && exchanges.idle ? answer(head) : undefined;
  if (answered) return answered;
  if (head && alone && (head.plain || head.signed)) exchanges.sent(head.method);
  else if (head?.bodyLength !== undefined && read!.more <= head.bodyLength) {
    // A write, say: followed past its body, so that the reads after it may be answered here.
    exchanges.sent(head.method, head.bodyLength - read!.more);
  } else {
    // A connection that sent a cookie, a chunked body or anything else the relay never answers
    // or cannot frame is not followed further: reading its requests would be waste.
    exchanges.stop();
  }
  return undefined;
}

/** Writes the relay's own answer (one it must wait for, once it came) under the answer's clock. */
async function writeOwn(
  client: Deno.Conn,
  clock: Clock,
  answered: Uint8Array[] | Promise<Uint8Array[]>,
): Promise<void> {
  // The head is in and its answer owed: the answer's time, not the header's, also while a page
  // is written to a client slow to read it (a hit's answer was cut off at the header timeout).
  clock.headsIn(1);
  const progressed = (bytes: number) => clock.progressed(bytes);
  const parts = Array.isArray(answered) ? answered : await answered;
  for (const part of parts) await writeAll(client, part, progressed);
  clock.answered();
}

/**
 * Writes the relay's own answer, owed until written: shutdown waits for it before the inner
 * server closes its side, which ends the connection (a cache hit being written was cut off
 * mid-body at shutdown: a review, 2026-12-03). True when the client left (`reading`, the read
 * begun while a signed-in answer is awaited, found its end) before it was written.
 */
async function writeOwed(
  client: Deno.Conn,
  clock: Clock,
  answered: Uint8Array[] | Promise<Uint8Array[]>,
  owed: Set<Promise<void>>,
  reading: Promise<number | null> | undefined,
): Promise<boolean> {
  const writing = writeOwn(client, clock, answered);
  owed.add(writing);
  try {
    if (reading) {
      writing.catch(() => {}); // a client that left: the write fails, the connection is closed
      const left = reading.then((read) => read === null, () => true);
      if (await Promise.race([writing.then(() => false), left])) return true;
    }
    await writing;
    return false;
  } finally {
    owed.delete(writing);
  }
}

/**
 * The relay's buffer for `Deno.serve`'s answers: this size first, the larger one once an answer
 * fills it. A fault experiment (2026-12-02, 2,000 signed-in keep-alive connections left idle) found
 * 80 KiB a connection in these buffers alone (this one was 64 KiB from the start): RSS 72 -> 233
 * MiB, where the README's bound for the whole gateway is CACHE_MAX_BYTES + 64 MiB.
 */
const ANSWER_BUFFER_FIRST = 16 * 1024;
const ANSWER_BUFFER_MAX = 64 * 1024;

/**
 * The JSON:API error written in place of `Deno.serve`'s refusal of the head `sent` ends with; for
 * a HEAD, its head alone (RFC 9110 §9.3.2: its `Content-Length` still says the body's length).
 */
function refusalBytes(sent: SinceAnswer): Uint8Array[] {
  const error = sent.refusedFor();
  const { chunks } = errorBytes(error, pickRequestId(null), { Connection: "close" });
  if (sent.refusedMethod() !== "HEAD") return chunks;
  // The first chunk starts with the whole head (the body follows in it, or in the next).
  return [chunks[0].subarray(0, headEnd(chunks[0]) + 4)];
}

/**
 * Relays `Deno.serve`'s answers on one connection to its client; a refusal of a head it cannot
 * read goes out as a JSON:API error instead, which closes the connection as the refusal does.
 */
async function relayAnswers(
  upstream: Deno.Conn,
  client: Deno.Conn,
  clock: Clock,
  exchanges: Exchanges | undefined,
  sent: SinceAnswer,
): Promise<void> {
  // Small until an answer fills it: every idle keep-alive connection holds this buffer in a
  // pending read, and most answers fit in a few kilobytes.
  let buffer = new Uint8Array(ANSWER_BUFFER_FIRST);
  for (;;) {
    const n = await upstream.read(buffer);
    if (n === null) break;
    const chunk = buffer.subarray(0, n);
    const before = beforeRefusal(chunk);
    if (before === undefined) await writeAll(client, chunk);
    else {
      await writeAll(client, before);
      for (const part of refusalBytes(sent)) await writeAll(client, part);
    }
    // Counted once written: an answer the relay makes must not go out beside these bytes.
    if (exchanges?.following) exchanges.received(chunk);
    if (!isInterimAlone(chunk)) {
      clock.answered();
      sent.reset();
    }
    if (n === buffer.length && n < ANSWER_BUFFER_MAX) buffer = new Uint8Array(ANSWER_BUFFER_MAX);
  }
}

/** Reads of `client` into `buffer`, each told to `onClientRead` (see GuardOptions) when given. */
function clientReads(
  client: Deno.Conn,
  buffer: Uint8Array,
  onClientRead: GuardOptions["onClientRead"],
): () => Promise<number | null> {
  if (!onClientRead) return () => client.read(buffer);
  return () => client.read(buffer).then((n) => (n !== null && onClientRead(n), n));
}

/** One client connection relayed to the inner server under the header clock. */
async function relay(
  client: Deno.Conn,
  socketPath: string,
  sweeper: Sweeper,
  answer: GuardOptions["answer"],
  owed: Set<Promise<void>>,
  onClientRead: GuardOptions["onClientRead"],
) {
  const upstream = await Deno.connect({ transport: "unix", path: socketPath });
  const clock = new Clock(sweeper, [client, upstream]);
  const headEnds = new HeadEnds();
  // Followed only where the relay may answer: without `answer` there is nothing to follow for.
  const exchanges = answer && new Exchanges();
  const sent = new SinceAnswer();
  const toClient = relayAnswers(upstream, client, clock, exchanges, sent);
  const toServer = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    const read = clientReads(client, buffer, onClientRead);
    // A read begun while the relay waited for its own answer: the client's next bytes, or its end.
    let next: Promise<number | null> | undefined;
    let preface = 0;
    for (;;) {
      const n = await (next ?? read());
      next = undefined;
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      if (preface !== -1) {
        // HTTP/1.1 only: the clock cannot time HTTP/2 (see H2_PREFACE), so it is closed.
        preface = prefaceMatched(chunk, preface);
        if (preface === H2_PREFACE.length) break;
      }
      const answered = exchanges?.following && answer
        ? ownAnswer(chunk, exchanges, answer)
        : undefined;
      if (answered) {
        // The head is read (the buffer is free). Reading on while the service answers lets a
        // client that left go now, as the full path does, instead of holding its socket and the
        // relay's (three descriptors in all) until the answer or its 504; bytes it sends meanwhile
        // wait for their turn, after the answer.
        if (!Array.isArray(answered)) next = read();
        if (await writeOwed(client, clock, answered, owed, next)) break;
        continue;
      }
      clock.headsIn(headEnds.count(chunk));
      sent.add(chunk);
      try {
        await writeAll(upstream, chunk);
      } catch {
        // `Deno.serve` closed its side (a head it refused, an answer given before the rest of a
        // body): what it wrote before must still reach the client. Closing at once lost it, and
        // a client that sent a URL of 300 kB got no answer at all.
        await toClient.catch(() => {});
        break;
      }
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
  serve: (client: Deno.TcpConn) => void | Promise<void>,
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

const NO_ROOM = errorBytes(
  new ServiceUnavailableError(
    "Cannot take the connection now: the gateway is at its limit of open files; try again shortly",
  ),
  pickRequestId(null),
  { Connection: "close", "Retry-After": "1" },
).chunks;

/**
 * Answers a connection there is no room for with 503 and closes it; its request is read (for
 * 1 s at most) and dropped, since closing with unread bytes resets the connection and the client
 * may never read the answer. One descriptor for that second, where relaying it would take three.
 */
async function refuseForRoom(client: Deno.TcpConn): Promise<void> {
  const drained = setTimeout(() => client.close(), 1_000);
  try {
    for (const chunk of NO_ROOM) await writeAll(client, chunk);
    await client.closeWrite();
    const buffer = new Uint8Array(4096);
    while (await client.read(buffer) !== null) {
      // Dropped.
    }
    clearTimeout(drained);
    client.close();
  } catch {
    // Closed by the timer, or by the client.
  }
}

/** Serves `handler` behind the header clock (see the module comment). */
export async function serveGuarded(
  options: GuardOptions,
  handler: Deno.ServeHandler<Deno.UnixAddr>,
): Promise<GuardedServer> {
  // The port first: a port in use (a start-up failure users cause) then leaves nothing behind.
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const inner = await innerServer(handler, options.onError).catch((error) => {
    listener.close();
    throw error;
  });
  const socketPath = inner.socketPath;
  const addr = listener.addr as Deno.NetAddr;
  options.onListen?.({ hostname: addr.hostname, port: addr.port });
  const sweeper = new Sweeper(
    options.headerTimeoutMs,
    options.answerWithinMs ?? 6 * options.headerTimeoutMs,
  );
  // Answers the relay is waiting for, to be written before the inner server closes the
  // connections; once shutting down the relay answers nothing itself (Deno.serve drains).
  const owed = new Set<Promise<void>>();
  let closing = false;
  const ownAnswers = options.answer;
  const answer = ownAnswers && ((head: RawHead) => closing ? undefined : ownAnswers(head));
  const room = new OpenFileRoom();
  let open = 0;
  let refusing = 0;
  let full = false;
  const accepting = acceptEach(listener, (client) => {
    if (room.full(open)) {
      if (!full) options.onFull?.(full = true, { connections: open, most: room.connections() });
      // Not even room to answer (gateway/open_files.ts): the client sees the connection closed.
      if (refusing >= REFUSING_AT_ONCE) return client.close();
      refusing++;
      return refuseForRoom(client).finally(() => refusing--);
    }
    if (full) options.onFull?.(full = false, { connections: open, most: room.connections() });
    open++;
    relay(client, socketPath, sweeper, answer, owed, options.onClientRead).catch(() =>
      client.close()
    ).finally(() => open--);
  });
  return {
    port: addr.port,
    async shutdown() {
      closing = true;
      listener.close();
      await accepting;
      await Promise.allSettled([...owed]);
      await inner.shutdown();
      sweeper.stop();
    },
  };
}
