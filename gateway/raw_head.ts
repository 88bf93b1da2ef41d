/**
 * Reading an HTTP/1.1 request head from the bytes a client sent, for the slow-client relay
 * (gateway/slow_clients.ts), which answers repeated cache hits (gateway/hit_path.ts) and repeated
 * signed-in reads (gateway/signed_path.ts) itself and must know where each request ends. Strict on
 * purpose: anything this reader is not sure of (another version, a folded line, a byte outside
 * printable ASCII, a name that is no token, more than one of a header it reads) makes it give up,
 * and the request goes to `Deno.serve` as before.
 *
 * @example
 * ```ts
 * import { readHead } from "./raw_head.ts";
 * const head = readHead(new TextEncoder().encode("GET /v1/events HTTP/1.1\r\nHost: a\r\n\r\n"));
 * console.log(head?.target, head?.plain); // "/v1/events" true
 * ```
 */

import { isAuthority } from "./middleware/host.ts";

export interface RawHead {
  method: string;
  /** The request target exactly as sent (origin form: path and query). */
  target: string;
  accept?: string;
  ifNoneMatch?: string;
  requestId?: string;
  /** The `Authorization` value, when the head has exactly one. */
  authorization?: string;
  /** A body follows the head (Content-Length or Transfer-Encoding). */
  hasBody: boolean;
  /**
   * The body's length when one `Content-Length` alone frames it (no `Transfer-Encoding`) and the
   * head is otherwise one `plain` or `signed` says: where the next request starts, which the relay
   * then knows as `Deno.serve` does (gateway/exchanges.ts). Undefined for anything else.
   */
  bodyLength?: number;
  /**
   * Nothing in the head but what the short way of a hit reads: exactly one Host, no body, no
   * credential (Authorization, Cookie), nothing that changes how the connection goes on
   * (Connection other than `keep-alive`, Expect, Upgrade), no repeated Accept, If-None-Match or
   * X-Request-Id.
   */
  plain: boolean;
  /**
   * What `plain` says, but for exactly one `Authorization`: a signed-in read the short way of
   * signed-in reads may answer (gateway/signed_path.ts). Never true with `plain`.
   */
  signed: boolean;
}

/**
 * Heads larger than this, or with more fields, are left to `Deno.serve` (so a short way never
 * needs to remember a request whose target and Accept are longer: gateway/signed_path.ts).
 */
export const MAX_HEAD_BYTES = 8 * 1024;
const MAX_FIELDS = 64;

const CR = 13;
const LF = 10;
const TAB = 9;

/** The index of the first CRLFCRLF (the end of a head) in `bytes` at or after `from`, or -1. */
export function headEnd(bytes: Uint8Array, from = 0): number {
  for (let i = from; i + 3 < bytes.length; i++) {
    if (bytes[i] === CR && bytes[i + 1] === LF && bytes[i + 2] === CR && bytes[i + 3] === LF) {
      return i;
    }
  }
  return -1;
}

/**
 * Whether `chunk` holds one complete head in printable ASCII and nothing after it: it ends at the
 * first CRLFCRLF, every line ends with CRLF, and no other byte is a control byte but tab. Why
 * strict: `Deno.serve` also takes a bare LF as a line's end, so a head this reader would read as
 * one request could be two there (the relay would then answer out of turn), or hide a header
 * (a credential, another Host) from the relay in what it took for a value.
 */
export function isOneHead(chunk: Uint8Array): boolean {
  const n = chunk.length;
  if (n < 4 || n > MAX_HEAD_BYTES) return false;
  if (chunk[n - 4] !== CR || chunk[n - 3] !== LF || chunk[n - 2] !== CR || chunk[n - 1] !== LF) {
    return false;
  }
  for (let i = 0; i < n - 4; i++) {
    const byte = chunk[i];
    if (byte > 0x7e) return false;
    if (byte >= 0x20 || byte === TAB) continue;
    if (byte === CR) {
      if (chunk[i + 1] !== LF || (chunk[i + 2] === CR && chunk[i + 3] === LF)) return false;
    } else if (byte !== LF || chunk[i - 1] !== CR) return false;
  }
  return true;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Printable ASCII and tabs: what this reader accepts in a field value. */
const VALUE = /^[\t\x20-\x7e]*$/;
/** An origin-form target: a path, maybe a query; printable ASCII without spaces. */
const TARGET = /^\/[\x21-\x7e]*$/;

/** The headers the short way reads, by lower-case name. */
const READ = {
  "accept": "accept",
  "if-none-match": "ifNoneMatch",
  "x-request-id": "requestId",
  "authorization": "authorization",
} as const;

/**
 * Other names that keep a request from the short way (lower case; Host, Connection and the body's
 * headers are read above them).
 */
const NOT_PLAIN = new Set([
  "proxy-authorization",
  "cookie",
  "expect",
  "upgrade",
  "te",
]);

const decoder = new TextDecoder("ascii");

/**
 * The head in `chunk` when it is one complete, well-formed HTTP/1.1 request head and nothing
 * else; undefined for anything else.
 */
export function readHead(chunk: Uint8Array): RawHead | undefined {
  if (!isOneHead(chunk)) return undefined;
  const lines = decoder.decode(chunk.subarray(0, chunk.length - 4)).split("\r\n");
  const [method, target, version, ...extra] = lines[0].split(" ");
  if (extra.length || version !== "HTTP/1.1" || !TOKEN.test(method) || !TARGET.test(target)) {
    return undefined;
  }
  if (lines.length - 1 > MAX_FIELDS) return undefined;
  const head: RawHead = { method, target, hasBody: false, plain: true, signed: false };
  let hosts = 0;
  // The last Content-Length's value (NaN when it is no plain number, or for a Transfer-Encoding);
  // `lengths` counts both headers, so that only one Content-Length alone frames a body.
  let length: number | undefined;
  let lengths = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined; // also a folded line, which starts with a space
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name) || !VALUE.test(value)) return undefined;
    const lower = name.toLowerCase();
    switch (lower) {
      case "host":
        hosts++;
        if (!isAuthority(value)) head.plain = false;
        break;
      case "accept":
      case "if-none-match":
      case "x-request-id":
      case "authorization": {
        const field = READ[lower];
        if (head[field] !== undefined) head.plain = false; // two of them: left to the app
        head[field] = value;
        break;
      }
      case "connection":
        // Browsers say `keep-alive`, HTTP/1.1's default; anything else changes the connection.
        if (value.toLowerCase() !== "keep-alive") head.plain = false;
        break;
      case "content-length":
        head.hasBody = true;
        lengths++;
        length = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
        break;
      case "transfer-encoding":
        head.hasBody = true;
        length = NaN;
        lengths++;
        break;
      default:
        if (NOT_PLAIN.has(lower)) head.plain = false;
    }
  }
  if (hosts !== 1) head.plain = false;
  return classified(head, lengths === 1 ? length : NaN);
}

/**
 * `head` (plain so far if nothing but its body and credential keeps it off the short ways) told
 * apart: plain, signed, or with a body of `length` bytes the relay can follow past (NaN: none).
 */
function classified(head: RawHead, length: number | undefined): RawHead {
  // A plain head but for its body: framed by one Content-Length alone, it is followed past.
  if (head.plain && head.hasBody && length !== undefined && !Number.isNaN(length)) {
    head.bodyLength = length;
  }
  if (head.hasBody) head.plain = false;
  // A credential takes the head off the short way of hits (one user's answer is not another's).
  if (head.authorization !== undefined) {
    head.signed = head.plain;
    head.plain = false;
  }
  return head;
}

/**
 * The head at the start of `chunk` and how many bytes follow it there (the start of its body,
 * or more), when `chunk` starts with one complete, well-formed head (`readHead`); else undefined.
 */
export function readHeadAndMore(chunk: Uint8Array): { head: RawHead; more: number } | undefined {
  // The common read, a head alone, is scanned once.
  const alone = readHead(chunk);
  if (alone) return { head: alone, more: 0 };
  const end = headEnd(chunk);
  if (end === -1 || end + 4 === chunk.length) return undefined;
  const head = readHead(chunk.subarray(0, end + 4));
  return head && { head, more: chunk.length - (end + 4) };
}
