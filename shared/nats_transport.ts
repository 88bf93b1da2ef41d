/**
 * A NATS transport on Deno's own TCP sockets, for `@nats-io/nats-core`.
 *
 * Why not `@nats-io/transport-node`: under Deno it goes through the `node:net` compatibility
 * layer, where one socket write costs ~24 µs against ~1.6 µs for `Deno.Conn.write` (measured
 * here), and the gateway and every service write once per request. `@nats-io/transport-deno`
 * would be the well-kept choice, but it is published on JSR only, which our machines cannot
 * reach. This is the same small contract (`Transport` of nats-core): dial, read the server's
 * INFO, upgrade to TLS when the server asks, then hand frames both ways.
 *
 * @example
 * ```ts ignore
 * import { connectNats } from "@shared/nats_transport.ts";
 * const nc = await connectNats({ servers: "nats://127.0.0.1:4222" });
 * ```
 */
import {
  checkOptions,
  type Deferred,
  deferred,
  errors,
  extractProtocolMessage,
  INFO,
  NatsConnectionImpl,
  setTransportFactory,
  type Transport,
} from "@nats-io/nats-core/internal";
import { setImmediate } from "node:timers";
import type {
  ConnectionOptions,
  NatsConnection,
  Server,
  ServerInfo,
} from "@nats-io/nats-core/internal";

const decoder = new TextDecoder();
/** A refusal sent with the greeting (`max_connections` reached): `-ERR '<the server's words>'`. */
const REFUSED_AT_ONCE = /\r\n-ERR '([^'\r\n]*)'/;

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** A `tls://` URL met a server that offers no TLS: refused, never spoken to in plaintext. */
export class TlsNotOfferedError extends errors.ConnectionError {
  override name = "TlsNotOfferedError";
  /** The cause alone, for a start-up line that names the server itself (shared/lifecycle.ts). */
  readonly reason =
    "a tls:// URL asks for TLS and the server offers none (bus requests carry passwords: no plaintext)";

  constructor(server: string) {
    super("");
    this.message = `Cannot connect to NATS at ${server}: ${this.reason}`;
  }
}

export class DenoTransport implements Transport {
  readonly lang = "nats.js";
  readonly version = "deno-native";
  closeError?: Error;
  #conn?: Deno.Conn;
  #options!: ConnectionOptions;
  #encrypted = false;
  #done = false;
  #connected = false;
  #frames: Uint8Array[] = [];
  #signal: Deferred<void> = deferred();
  #closed: Deferred<void | Error> = deferred();
  /** Writes queue behind each other so frames leave in order. */
  #writing: Promise<void> = Promise.resolve();
  #pending: Uint8Array[] = [];

  get isClosed(): boolean {
    return this.#done;
  }

  isEncrypted(): boolean {
    return this.#encrypted;
  }

  async connect(server: Server, options: ConnectionOptions): Promise<void> {
    this.#options = options;
    // Every socket opened here is closed on failure: nats.js gives up on a connect after its
    // timeout without closing a transport that never connected, so a socket to a hung node
    // stayed open, and began reading when the node woke (a review, 2026-12-03).
    let opened: Deno.Conn | undefined;
    try {
      const tcp = await Deno.connect({ hostname: server.hostname, port: server.port });
      opened = tcp;
      tcp.setNoDelay(true);
      let conn: Deno.Conn = tcp;
      // The INFO stays in the frames: the protocol parser answers it with CONNECT.
      const { info, received } = await this.#readInfoWithin(conn, options.timeout ?? 20_000);
      if (options.tls && !info.tls_required && !info.tls_available) {
        throw new TlsNotOfferedError(`${server.hostname}:${server.port}`);
      }
      checkOptions(info, options);
      const wantsTls = info.tls_required === true ||
        (info.tls_available === true && options.tls !== null && options.tls !== undefined);
      if (wantsTls) {
        conn = await Deno.startTls(tcp, { hostname: server.tlsName || server.hostname });
        opened = conn;
        this.#encrypted = true;
      }
      this.#frames.push(received);
      this.#conn = conn;
      this.#connected = true;
      this.#readLoop(conn);
    } catch (error) {
      if (opened !== undefined && opened !== this.#conn) closeQuietly(opened);
      this.#conn?.close();
      if (error instanceof Deno.errors.ConnectionRefused) {
        throw new errors.ConnectionError("connection refused", { cause: error });
      }
      throw error;
    }
  }

  /**
   * `#readInfo`, given up after `ms` (the connect timeout): a node that accepts and never speaks
   * (frozen) would hold the connect, and its socket, for good.
   */
  async #readInfoWithin(
    conn: Deno.Conn,
    ms: number,
  ): Promise<{ info: ServerInfo; received: Uint8Array }> {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      closeQuietly(conn);
    }, ms);
    try {
      return await this.#readInfo(conn);
    } catch (error) {
      if (late) {
        throw new errors.ConnectionError(`no INFO from the server within ${ms} ms`, {
          cause: error,
        });
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads until the server's INFO line has arrived. */
  async #readInfo(conn: Deno.Conn): Promise<{ info: ServerInfo; received: Uint8Array }> {
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) throw new errors.ConnectionError("the server closed the connection");
      chunks.push(buffer.slice(0, n));
      const all = concat(chunks);
      const line = extractProtocolMessage(all);
      if (line === "") continue;
      const match = INFO.exec(line);
      if (!match) throw new errors.ConnectionError("unexpected response from server");
      // A server with no room for this client greets, refuses and closes at once; left to
      // nats.js, the refusal went unheard and the connect ended in "timeout" (NATS_URL's start
      // line said nothing there answered: a resource review, 2026-12-06).
      const refused = REFUSED_AT_ONCE.exec(decoder.decode(all));
      if (refused) throw new errors.ConnectionError(`the server refused it: ${refused[1]}`);
      return { info: JSON.parse(match[1]), received: all };
    }
  }

  async #readLoop(conn: Deno.Conn): Promise<void> {
    let error: Error | undefined;
    try {
      // One read buffer; each frame is a copy of what arrived. Messages are views into their
      // frame (nats.js does not copy payloads), so a fresh 64 KiB buffer per read cost an
      // allocation and a zeroing each time and pinned 64 KiB behind every kept payload.
      const buffer = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        this.#frames.push(buffer.slice(0, n));
        this.#signal.resolve();
      }
    } catch (cause) {
      if (!this.#done) error = cause instanceof Error ? cause : new Error(String(cause));
    }
    await this.#close(error, false);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.#iterate();
  }

  async *#iterate(): AsyncIterableIterator<Uint8Array> {
    for (;;) {
      if (this.#frames.length === 0) {
        if (this.#done) return;
        await this.#signal;
      }
      const frames = this.#frames;
      this.#frames = [];
      this.#signal = deferred();
      for (const frame of frames) {
        if (this.#options.debug) console.info(`> ${decoder.decode(frame)}`);
        yield frame;
      }
      if (this.#done && this.#frames.length === 0) return;
    }
  }

  /**
   * Queues a frame. The write waits for an immediate, until the event loop has run everything
   * that arrived with it, so under load the frames of many requests leave in one write instead of
   * one each (nats-core flushes after every microtask turn, and each request is a turn of its
   * own). Each write wakes nats-server: on two loaded cores, the wake-ups rather than the bytes
   * were what a message cost (signed-in reads: nats-server 0.15 -> 0.07 ms of CPU per request).
   * A request alone waits no longer: immediates run before the loop polls again.
   */
  send(frame: Uint8Array): void {
    if (this.#done || !this.#conn) return;
    this.#pending.push(frame);
    if (this.#pending.length === 1) setImmediate(() => this.#flush());
  }

  /** Chains a write of every frame queued so far behind the writes before it. */
  #flush(): void {
    const conn = this.#conn;
    if (this.#pending.length === 0 || !conn) return;
    this.#writing = this.#writing.then(async () => {
      const data = concat(this.#pending.splice(0));
      if (data.length === 0) return;
      let written = 0;
      while (written < data.length) written += await conn.write(data.subarray(written));
    }).catch(() => {
      // A failed write shows up as a read error or a stale-connection ping; as in nats.js.
    });
  }

  close(error?: Error): Promise<void> {
    return this.#close(error, true);
  }

  disconnect(): void {
    this.#close(undefined, true).catch(() => {});
  }

  discard(): void {
    this.#done = true;
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
  }

  closed(): Promise<void | Error> {
    return this.#closed;
  }

  async #close(error: Error | undefined, internal: boolean): Promise<void> {
    if (!this.#connected || this.#done) return;
    this.closeError = error;
    if (!error && internal) {
      // Frames still waiting for their immediate leave before the socket closes.
      this.#flush();
      await this.#writing;
    }
    this.#done = true;
    try {
      this.#conn?.close();
    } catch {
      // Already closed by the peer.
    }
    this.#signal.resolve();
    this.#closed.resolve(error);
  }
}

/**
 * Connects with the Deno-native transport (same options as nats.js `connect`). A `tls://` server
 * URL means TLS or no connection: nats.js reads the scheme as any other and talks plaintext to a
 * server that does not require TLS, so such a URL turns `tls` on (a server without TLS refused).
 */
export async function connectNats(options: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new DenoTransport(), defaultPort: 4222 });
  const { servers, ...login } = withUrlCredentials([options.servers ?? []].flat());
  const asksTls = servers.some((server) => /^tls:\/\//i.test(server.trim()));
  const given = options.user || options.pass || options.token || options.authenticator;
  try {
    return await NatsConnectionImpl.connect({
      ...options,
      ...(given ? {} : login),
      servers,
      ...(asksTls && !options.tls ? { tls: {} } : {}),
    });
  } catch (error) {
    if (!(error instanceof errors.TimeoutError)) throw error;
    const refusal = await refusalOf(servers[0]);
    if (refusal === undefined) throw error;
    throw new errors.ConnectionError(`the server refused it: ${refusal}`, { cause: error });
  }
}

/**
 * What the server at `url` refuses every connection with as it greets it (`maximum connections
 * exceeded`), or undefined. Asked only after a connect timed out: when the refusal comes in its
 * own packet, nats.js hears it as a protocol error, reconnects, and times out, and the start
 * line said nothing answered there (a resource review, 2026-12-06).
 */
async function refusalOf(url: string | undefined): Promise<string | undefined> {
  const match = /^(?:[a-z]+:\/\/)?([^:/]+)(?::(\d+))?/i.exec(url?.trim() ?? "");
  if (!match) return undefined;
  let conn: Deno.Conn | undefined;
  const giveUp = setTimeout(() => conn && closeQuietly(conn), 500);
  try {
    conn = await Deno.connect({ hostname: match[1], port: Number(match[2] ?? 4222) });
    let text = "";
    const buffer = new Uint8Array(4096);
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      text += decoder.decode(buffer.subarray(0, n));
      const refused = REFUSED_AT_ONCE.exec(text);
      if (refused) return refused[1];
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(giveUp);
    if (conn) closeQuietly(conn);
  }
}

/**
 * The login a server URL carries (`nats://user:pass@host`, or `nats://token@host`), taken out
 * of the URLs. nats.js sends only the `user`/`pass`/`token` options in its CONNECT and ignores
 * a URL's userinfo, so a NATS that requires a login refused every process however NATS_URL
 * named it; and a URL kept whole would carry the password into nats.js's status events.
 */
export function withUrlCredentials(
  servers: string[],
): { servers: string[]; user?: string; pass?: string; token?: string } {
  let login: { user?: string; pass?: string; token?: string } = {};
  const bare = servers.map((server) => {
    const match = /^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@(.*)$/i.exec(server.trim());
    if (!match) return server;
    const [, scheme, userinfo, rest] = match;
    if (login.user === undefined && login.token === undefined) {
      const colon = userinfo.indexOf(":");
      login = colon < 0 ? { token: decodeURIComponent(userinfo) } : {
        user: decodeURIComponent(userinfo.slice(0, colon)),
        pass: decodeURIComponent(userinfo.slice(colon + 1)),
      };
    }
    return scheme + rest;
  });
  return { servers: bare, ...login };
}

/** Closes `conn`, which may be closed already. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed before.
  }
}
