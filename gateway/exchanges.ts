/**
 * Where one relayed connection stands between its requests and `Deno.serve`'s answers, as long as
 * it stays simple enough to follow: every request a head of its own, read whole, with no body or
 * one framed by a single `Content-Length` (gateway/raw_head.ts's `bodyLength`), each read of its
 * body holding nothing past it; every answer framed by `Content-Length` (or without a body: HEAD,
 * 204, 304). The relay may answer a request itself only when the connection is `idle` (every
 * request sent on has been sent whole and answered in full), so that its answer can never
 * overtake one still coming. Anything else (a chunked body, a head split over two reads or sharing
 * one with more than its body, a body's end sharing a read with what follows, a chunked or interim
 * answer, an answer that comes before its request's body is sent whole) and the connection is no
 * longer followed: it is relayed as it always was, to its end. So is one that sends a cookie
 * (gateway/slow_clients.ts), whose requests the relay never answers; one `Authorization` is
 * followed, for the short way of signed-in reads (gateway/signed_path.ts).
 * Until 2026-12-03 a connection was not followed past its first body: a client that wrote now and
 * then on the connection it read on (the benchmark's mixed load) had every later read, hits too,
 * take the hop to `Deno.serve`.
 *
 * @example
 * ```ts
 * import { Exchanges } from "./exchanges.ts";
 * const exchanges = new Exchanges();
 * exchanges.sent("GET");
 * exchanges.received(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
 * console.log(exchanges.idle); // true
 * ```
 */

import { headEnd } from "./raw_head.ts";

/** Answer heads longer than this are not followed. */
const MAX_ANSWER_HEAD = 16 * 1024;

const decoder = new TextDecoder("ascii");

export class Exchanges {
  #following = true;
  /** The methods of the requests sent on and not yet answered in full, oldest first. */
  readonly #methods: string[] = [];
  /** The start of an answer's head that has not all arrived. */
  #head: Uint8Array | undefined;
  /** Body bytes of the current answer still to come. */
  #bodyLeft = 0;
  /** Body bytes of the last request sent on that the client has still to send. */
  #bodyAhead = 0;

  /** Whether the connection is still followed and owes the client nothing. */
  get idle(): boolean {
    return this.#following && this.#methods.length === 0 && this.#bodyLeft === 0 &&
      this.#head === undefined && this.#bodyAhead === 0;
  }

  /** Whether what the client sends next is (the rest of) a request's body. */
  get inBody(): boolean {
    return this.#following && this.#bodyAhead > 0;
  }

  /** Whether the connection is still followed. */
  get following(): boolean {
    return this.#following;
  }

  /** Stops following: the rest of the connection is relayed without looking. */
  stop(): void {
    this.#following = false;
    this.#methods.length = 0;
    this.#head = undefined;
    this.#bodyLeft = 0;
    this.#bodyAhead = 0;
  }

  /**
   * A request head of `method` was sent on to `Deno.serve`, with the start of its body if any:
   * `bodyAhead` bytes of it are still to come.
   */
  sent(method: string, bodyAhead = 0): void {
    if (!this.#following) return;
    this.#methods.push(method);
    this.#bodyAhead = bodyAhead;
  }

  /**
   * `length` bytes the client sent went on as a request's body. A read that runs past the body's
   * end is not followed: what follows it would have to be read from the middle of a read.
   */
  bodySent(length: number): void {
    if (length > this.#bodyAhead) return this.stop();
    this.#bodyAhead -= length;
  }

  /** Bytes of `Deno.serve`'s answers, in order. */
  received(bytes: Uint8Array): void {
    let at = 0;
    while (this.#following && at < bytes.length) {
      if (this.#bodyLeft > 0) {
        const taken = Math.min(this.#bodyLeft, bytes.length - at);
        this.#bodyLeft -= taken;
        at += taken;
        if (this.#bodyLeft === 0) this.#methods.shift();
        continue;
      }
      at = this.#readHead(bytes, at);
    }
  }

  /** Reads (the rest of) an answer's head from `bytes[at..]`; where its body starts. */
  #readHead(bytes: Uint8Array, at: number): number {
    const rest = bytes.subarray(at);
    const pending = this.#head;
    const joined = pending ? concat(pending, rest) : rest;
    const end = headEnd(joined, pending ? Math.max(0, pending.length - 3) : 0);
    if (end === -1) {
      if (joined.length > MAX_ANSWER_HEAD) this.stop();
      else this.#head = joined.slice();
      return bytes.length;
    }
    this.#head = undefined;
    // An answer to the request whose body is still coming: its handler did not wait for it, and
    // `Deno.serve` then closes the connection (`connection: close`) unless the rest was already
    // in; a request after the body would never be answered there, so it is not answered here.
    if (this.#bodyAhead > 0 && this.#methods.length === 1) {
      this.stop();
      return bytes.length;
    }
    const bodyLength = this.#bodyLengthOf(decoder.decode(joined.subarray(0, end)));
    if (bodyLength === undefined) {
      this.stop();
      return bytes.length;
    }
    this.#bodyLeft = bodyLength;
    if (bodyLength === 0) this.#methods.shift();
    // Where the body starts in `bytes`: the head ended `end + 4` bytes into `joined`.
    return at + (end + 4 - (pending?.length ?? 0));
  }

  /** The body length an answer's head announces for the oldest request; undefined: not followed. */
  #bodyLengthOf(head: string): number | undefined {
    const method = this.#methods[0];
    if (method === undefined) return undefined; // an answer nobody asked for
    const lines = head.split("\r\n");
    const status = /^HTTP\/1\.1 (\d{3})( |$)/.exec(lines[0])?.[1];
    if (status === undefined || status.startsWith("1")) return undefined;
    let length: number | undefined;
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(":");
      const name = lines[i].slice(0, colon).toLowerCase();
      if (name === "transfer-encoding") return undefined;
      if (name === "content-length") {
        const value = lines[i].slice(colon + 1).trim();
        if (!/^\d{1,15}$/.test(value) || length !== undefined) return undefined;
        length = Number(value);
      }
    }
    if (method === "HEAD" || status === "204" || status === "304") return 0;
    return length;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}
