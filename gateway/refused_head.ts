/**
 * A request head `Deno.serve` cannot read (too large, too many fields, two Host fields, a byte a
 * field cannot hold): it writes a bare 400 by itself and closes. The slow-client relay
 * (gateway/slow_clients.ts) tells that refusal from the app's answers (`beforeRefusal`) and, from
 * what the client sent (`SinceAnswer`), which JSON:API error to send instead: 414, 431 or 400.
 *
 * @example
 * ```ts ignore
 * const sent = new SinceAnswer();
 * sent.add(chunkFromClient);
 * const before = beforeRefusal(chunkFromServer); // defined: the refusal ends the chunk
 * if (before) write(before, errorBytes(sent.refusedFor(), requestId));
 * ```
 */
import {
  type ApiError,
  BadRequestError,
  HeaderFieldsTooLargeError,
  UriTooLongError,
} from "@shared/errors.ts";

/**
 * The longest head `Deno.serve` reads (checked on Deno 2.9: a request line of 65,535 bytes, a head
 * of about 64 KiB), and the most header fields it takes; past either, it refuses the request.
 */
const DENO_HEAD_LIMIT = 64 * 1024;
const DENO_FIELDS_LIMIT = 128;
/** The bytes kept of each head's start: its method and the start of its target. */
const START_BYTES = 32;
const decoder = new TextDecoder("ascii");

/**
 * What the client sent since its last answer went out: enough to tell why `Deno.serve` refused a
 * head (`refusedFor`). Measured from the end of the last head it sent: with requests pipelined,
 * an answer and the refusal of the head behind it can come in one read, and counted from the
 * answer before, a 70 kB target behind a small GET was a 431, not a 414.
 */
export class SinceAnswer {
  bytes = 0;
  /** Where the head being read begins (after the last empty line). */
  #headStart = 0;
  /** Where its first line (the request line) ended, -1 while it has not. */
  #lineEnd = -1;
  /** Line ends among its first DENO_HEAD_LIMIT bytes. */
  #lines = 0;
  /** Where the last line end was. */
  #lastLf = -1;
  /** Line ends of the last head that ended. */
  #lastHeadLines = 0;
  /** The first bytes of the head being read (`#startLength` of them). */
  #start = new Uint8Array(START_BYTES);
  #startLength = 0;
  /** Those of the last head that ended (none: -1). */
  #lastStart = new Uint8Array(START_BYTES);
  #lastStartLength = -1;

  add(chunk: Uint8Array): void {
    this.#keepStart(chunk, Math.max(0, this.#headStart - this.bytes));
    for (let from = 0;;) {
      const scannedTo = Math.min(chunk.length, this.#headStart + DENO_HEAD_LIMIT - this.bytes);
      const lf = from < scannedTo ? chunk.indexOf(10, from) : -1;
      if (lf === -1 || lf >= scannedTo) break;
      const at = this.bytes + lf;
      if (this.#lineEnd === -1) this.#lineEnd = at;
      this.#lines++;
      // An empty line (`\r\n` right after a line end) ends the head.
      if (this.#lines > 1 && at - this.#lastLf <= 2) {
        this.#lastHeadLines = this.#lines;
        this.#headStart = at + 1;
        this.#lineEnd = -1;
        this.#lines = 0;
        [this.#lastStart, this.#start] = [this.#start, this.#lastStart];
        this.#lastStartLength = this.#startLength;
        this.#startLength = 0;
        this.#keepStart(chunk, lf + 1);
      }
      this.#lastLf = at;
      from = lf + 1;
    }
    this.bytes += chunk.length;
  }

  reset(): void {
    this.bytes = 0;
    this.#headStart = 0;
    this.#lineEnd = -1;
    this.#lines = 0;
    this.#lastLf = -1;
    this.#lastHeadLines = 0;
    this.#startLength = 0;
    this.#lastStartLength = -1;
  }

  /** Keeps the bytes of `chunk` from `from` that the start of the head being read still lacks. */
  #keepStart(chunk: Uint8Array, from: number): void {
    if (this.#startLength === START_BYTES || from >= chunk.length) return;
    const kept = chunk.subarray(from, from + START_BYTES - this.#startLength);
    this.#start.set(kept, this.#startLength);
    this.#startLength += kept.length;
  }

  /**
   * The method of the refused head, when its request line started with one (the relay sends no
   * body with the refusal of a HEAD: RFC 9110 §9.3.2).
   */
  refusedMethod(): string | undefined {
    return /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) /.exec(this.#refusedStart())?.[1];
  }

  /**
   * The start of the head `Deno.serve` refused: the one being read when it is too large to end
   * (as `refusedFor` tells), else the last that ended since the last answer (it reads a head
   * whole before it refuses a field or the target).
   */
  #refusedStart(): string {
    const current = this.bytes - this.#headStart > DENO_HEAD_LIMIT || this.#lastStartLength < 0;
    return current
      ? decoder.decode(this.#start.subarray(0, this.#startLength))
      : decoder.decode(this.#lastStart.subarray(0, this.#lastStartLength));
  }

  /**
   * The error for a head `Deno.serve` refused: too long a target (414), too large a head or too
   * many fields (431), anything else (400).
   */
  refusedFor(): ApiError {
    const head = this.bytes - this.#headStart;
    if (
      head > DENO_HEAD_LIMIT &&
      (this.#lineEnd === -1 || this.#lineEnd - this.#headStart > DENO_HEAD_LIMIT)
    ) {
      return new UriTooLongError(
        `Cannot read the request: its target is longer than ${DENO_HEAD_LIMIT} bytes`,
      );
    }
    // The request line, each field and the empty line that ends the head.
    const lines = Math.max(this.#lines, this.#lastHeadLines);
    if (head > DENO_HEAD_LIMIT || lines > DENO_FIELDS_LIMIT + 2) {
      return new HeaderFieldsTooLargeError(
        `Cannot read the request: its header fields are larger than ${DENO_HEAD_LIMIT} bytes ` +
          `or more than ${DENO_FIELDS_LIMIT}`,
      );
    }
    // `Deno.serve` takes the asterisk-form target for OPTIONS only (RFC 9112 §3.2.4).
    if (/^\S+ \*/.test(this.#refusedStart()) && this.refusedMethod() !== "OPTIONS") {
      return new BadRequestError("Cannot read the request: the target `*` is for OPTIONS only");
    }
    return new BadRequestError(
      "Cannot read the request: its head is not well-formed HTTP/1.1 (two Host fields, a byte " +
        "a field cannot hold, ...)",
    );
  }
}

/**
 * `Deno.serve`'s refusal of a head it cannot read (too large, two Host fields, a byte it does not
 * take), which it writes by itself and then closes: a 400 without a body, CORS headers or request
 * id, which no client can read as JSON:API and no script on another origin may read at all. The
 * app's own 400s always carry a document, so this one is told by its empty body.
 */
const BARE_REFUSAL =
  /HTTP\/1\.1 400 Bad Request\r\ncontent-length: 0\r\ndate: [^\r]*\r\nconnection: close\r\n\r\n$/;

/** The end of `chunk` without `Deno.serve`'s refusal when it ends with one; else undefined. */
export function beforeRefusal(chunk: Uint8Array): Uint8Array | undefined {
  // Most answers end with their body: only a bodiless one is read further.
  const n = chunk.length;
  if (n < 4 || chunk[n - 1] !== 10 || chunk[n - 2] !== 13 || chunk[n - 3] !== 10) return undefined;
  const tail = decoder.decode(chunk.subarray(Math.max(0, chunk.length - 128)));
  const match = BARE_REFUSAL.exec(tail);
  if (match === null) return undefined;
  return chunk.subarray(0, chunk.length - (tail.length - match.index));
}
