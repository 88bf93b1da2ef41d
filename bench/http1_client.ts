/**
 * A lean keep-alive HTTP/1.1 client for the load generator, in the manner of wrk: one TCP
 * connection, a request pre-encoded once, and a response read only as far as its framing needs
 * (status, Content-Length or chunks). `fetch` costs ~200 µs of CPU per request on loopback,
 * more than the servers a benchmark measures; this costs a fraction of that, so a ratio
 * measures the servers rather than the client.
 *
 * Plain `http:` only, one request at a time per connection (no pipelining).
 *
 * @example
 * ```ts ignore
 * import { encodeRequest, Http1Connection } from "./http1_client.ts";
 * const request = encodeRequest("http://127.0.0.1:8080/v1/events", undefined, {})!;
 * const connection = new Http1Connection(request.hostname, request.port);
 * console.log(await connection.send(request)); // 200
 * connection.close();
 * ```
 */

/** A request ready to write, and what the reader must know to frame its answer. */
export interface EncodedRequest {
  hostname: string;
  port: number;
  bytes: Uint8Array;
  /** A HEAD request: its answer never has a body. */
  head: boolean;
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const CR = 13;
const LF = 10;

/**
 * The bytes of `url` sent with `init` (or with `headers` when there is no `init`, as `runLoad`
 * does for fetch), or undefined for anything this client does not do: not `http:`, a body that
 * is neither a string nor bytes, a signal or other fetch-only options.
 */
export function encodeRequest(
  url: string,
  init: RequestInit | undefined,
  headers: Record<string, string>,
): EncodedRequest | undefined {
  const parsed = new URL(url);
  if (parsed.protocol !== "http:") return undefined;
  const { method = "GET", body, headers: initHeaders, ...rest } = init ?? {};
  if (Object.values(rest).some((value) => value !== undefined)) return undefined;
  let payload: Uint8Array | undefined;
  if (typeof body === "string") payload = encoder.encode(body);
  else if (body instanceof Uint8Array) payload = body;
  else if (body !== undefined && body !== null) return undefined;
  const fields = new Headers(init ? initHeaders : headers);
  if (!fields.has("accept")) fields.set("accept", "*/*");
  fields.delete("host");
  fields.delete("content-length");
  if (payload) fields.set("content-length", String(payload.length));
  let head = `${method.toUpperCase()} ${parsed.pathname}${parsed.search} HTTP/1.1\r\n` +
    `host: ${parsed.host}\r\n`;
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
  head += "\r\n";
  const start = encoder.encode(head);
  const bytes = payload ? new Uint8Array(start.length + payload.length) : start;
  if (payload) {
    bytes.set(start);
    bytes.set(payload, start.length);
  }
  return {
    hostname: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(parsed.port || 80),
    bytes,
    head: method.toUpperCase() === "HEAD",
  };
}

/** How an answer's body is framed, from its status line and headers. */
interface Framing {
  status: number;
  /** Body bytes to skip; -1 for chunked, Infinity for "until the server closes". */
  length: number;
  /** The server will close the connection after this answer. */
  close: boolean;
}

function parseHead(text: string, head: boolean): Framing {
  const status = Number(text.slice(9, 12));
  if (!text.startsWith("HTTP/1.") || !Number.isInteger(status)) {
    throw new Error(`Cannot read an HTTP answer: it begins ${JSON.stringify(text.slice(0, 40))}`);
  }
  const lower = text.toLowerCase();
  const connection = /\r\nconnection:[ \t]*([^\r]*)/.exec(lower)?.[1] ?? "";
  const close = connection.includes("close") ||
    (text.startsWith("HTTP/1.0") && !connection.includes("keep-alive"));
  if (head || status === 204 || status === 304 || status < 200) {
    return { status, length: 0, close };
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) return { status, length: -1, close };
  const length = /\r\ncontent-length:[ \t]*(\d+)/.exec(lower)?.[1];
  return length === undefined
    ? { status, length: Infinity, close: true }
    : { status, length: Number(length), close };
}

/**
 * One keep-alive connection to a loopback server. `send` writes a request and reads its whole
 * answer, returning the status; it reconnects when the server has closed the connection.
 */
export class Http1Connection {
  #conn: Deno.TcpConn | undefined;
  #buffer = new Uint8Array(65_536);
  #start = 0;
  #end = 0;
  /** Answers read on the current connection (0: just opened, so a failure is not staleness). */
  #served = 0;

  constructor(readonly hostname: string, readonly port: number) {}

  /** Sends `request` and reads its answer to the last byte; resolves to the status. */
  async send(request: EncodedRequest): Promise<number> {
    const reused = this.#conn !== undefined && this.#served > 0;
    try {
      return await this.#exchange(request);
    } catch (error) {
      this.close();
      // A kept-alive connection the server closed while idle: try once on a new one.
      if (reused && isStale(error)) return await this.#exchange(request);
      throw error;
    }
  }

  /** Drops the connection (the next `send` opens a new one). */
  close(): void {
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#conn = undefined;
    this.#start = this.#end = this.#served = 0;
  }

  async #exchange(request: EncodedRequest): Promise<number> {
    if (!this.#conn) {
      this.#conn = await Deno.connect({ hostname: this.hostname, port: this.port });
      this.#conn.setNoDelay(true);
    }
    await this.#writeAll(request.bytes);
    const framing = parseHead(await this.#readHead(), request.head);
    if (framing.length === -1) await this.#skipChunked();
    else await this.#skip(framing.length);
    this.#served++;
    if (framing.close) this.close();
    return framing.status;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await this.#conn!.write(bytes.subarray(written));
  }

  /** Reads more bytes after `#end`; false at end of stream. */
  async #fill(): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buffer.length) {
      const live = this.#end - this.#start;
      if (live * 2 > this.#buffer.length) {
        const bigger = new Uint8Array(this.#buffer.length * 2);
        bigger.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = bigger;
      } else {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      }
      this.#start = 0;
      this.#end = live;
    }
    const n = await this.#conn!.read(this.#buffer.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** The status line and headers, up to the blank line (consumed). */
  async #readHead(): Promise<string> {
    let from = this.#start;
    for (;;) {
      const at = findBlankLine(this.#buffer, from, this.#end);
      if (at >= 0) {
        const text = latin1.decode(this.#buffer.subarray(this.#start, at));
        this.#start = at + 4;
        return text;
      }
      from = Math.max(this.#start, this.#end - 3);
      const offset = from - this.#start;
      if (!(await this.#fill())) {
        if (this.#end === this.#start) throw new StaleConnection();
        throw new Error("Cannot read an HTTP answer: the server closed the connection mid-head");
      }
      from = this.#start + offset;
    }
  }

  /** Skips `length` body bytes (Infinity: until the server closes). */
  async #skip(length: number): Promise<void> {
    let left = length;
    for (;;) {
      const take = Math.min(left, this.#end - this.#start);
      this.#start += take;
      left -= take;
      if (left === 0) return;
      if (!(await this.#fill())) {
        if (length === Infinity) return;
        throw new Error("Cannot read an HTTP answer: the server closed the connection mid-body");
      }
    }
  }

  /** One CRLF-terminated line (consumed, without its CRLF). */
  async #readLine(): Promise<string> {
    for (;;) {
      const at = this.#buffer.subarray(this.#start, this.#end).indexOf(LF);
      if (at >= 0) {
        const text = latin1.decode(this.#buffer.subarray(this.#start, this.#start + at));
        this.#start += at + 1;
        return text.endsWith("\r") ? text.slice(0, -1) : text;
      }
      if (!(await this.#fill())) {
        throw new Error("Cannot read an HTTP answer: the server closed the connection mid-chunk");
      }
    }
  }

  async #skipChunked(): Promise<void> {
    for (;;) {
      const size = parseInt(await this.#readLine(), 16);
      if (!Number.isInteger(size)) throw new Error("Cannot read an HTTP answer: bad chunk size");
      if (size === 0) break;
      await this.#skip(size + 2); // the chunk and its CRLF
    }
    while ((await this.#readLine()) !== "") { /* trailers */ }
  }
}

/** The connection was closed before any byte of the answer: a keep-alive the server dropped. */
class StaleConnection extends Error {
  constructor() {
    super("Cannot read an HTTP answer: the server closed the connection");
  }
}

function isStale(error: unknown): boolean {
  return error instanceof StaleConnection || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset;
}

/** The index of the first CRLFCRLF in `bytes[from, end)`, or -1. */
function findBlankLine(buffer: Uint8Array, from: number, end: number): number {
  const bytes = buffer.subarray(0, end);
  for (let i = bytes.indexOf(CR, from); i >= 0 && i + 3 < end; i = bytes.indexOf(CR, i + 1)) {
    if (bytes[i + 1] === LF && bytes[i + 2] === CR && bytes[i + 3] === LF) return i;
  }
  return -1;
}
