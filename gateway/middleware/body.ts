/**
 * Reading a request body safely, before anything else parses it: a size limit (the declared
 * Content-Length is checked before reading, the bytes read are counted otherwise), a time limit
 * (a client trickling its body is cut off with 408), strict UTF-8, a nesting limit and no NUL
 * characters. The last three are one cheap pass over the bytes: a body nested 8,000 deep would
 * otherwise overflow a recursive serializer further on (it did, inside the bus client), and
 * Postgres refuses NUL in text, which surfaced as 500s.
 */
import {
  ApiError,
  BadRequestError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from "@shared/errors.ts";
import type { ErrorSource } from "@shared/errors.ts";

/** Deepest nesting of objects and arrays a JSON body may have. */
export const MAX_JSON_DEPTH = 64;
/** Default time a client has to send a whole body (BODY_TIMEOUT_MS overrides it). */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A malformed body points at the whole document (`""`), which ApiError's options cannot say. */
class MalformedBodyError extends BadRequestError {
  override readonly source: ErrorSource = { pointer: "" };
}

/** 408: the client did not send its body in time. */
export class RequestTimeoutError extends ApiError {
  override readonly status = 408;
  override readonly code = "request_timeout";
  override readonly title = "Request timeout";
}

function tooLarge(limitBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`Cannot read the body: it is larger than ${limitBytes} bytes`);
}

/** What a body may not be, checked in one pass over its bytes (see `checkJsonBytes`). */
export type BodyFault = "too-deep" | "nul" | "lone-surrogate";

/**
 * One pass over JSON bytes, without parsing: the nesting depth of objects and arrays outside
 * strings, NUL characters, raw or escaped (`\u0000`), and escaped surrogates that are not a pair
 * (`\ud800` alone) inside strings: valid JSON, but no text (it was stored as U+FFFD, as invalid
 * UTF-8 once was). Not a validator (JSON.parse follows); multi-byte UTF-8 never contains ASCII
 * bytes, so scanning bytes is safe.
 */
export function checkJsonBytes(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): BodyFault | null {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (byte === 0) return "nul";
    if (inString) {
      if (byte === 0x22) inString = false;
      else if (byte === 0x5c) {
        const unit = escapedUnit(bytes, i);
        if (unit === 0) return "nul";
        if (unit >= 0xdc00 && unit <= 0xdfff) return "lone-surrogate";
        if (unit >= 0xd800 && unit <= 0xdbff) {
          const next = bytes[i + 6] === 0x5c ? escapedUnit(bytes, i + 6) : -1;
          if (next < 0xdc00 || next > 0xdfff) return "lone-surrogate";
          i += 11; // past the pair's second escape
        } else i++; // the escaped character cannot end the string
      }
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x7b || byte === 0x5b) {
      if (++depth > maxDepth) return "too-deep";
    } else if (byte === 0x7d || byte === 0x5d) depth--;
  }
  return null;
}

/** The UTF-16 code unit of the `\uXXXX` escape at `i` (its backslash), or -1 for another one. */
function escapedUnit(bytes: Uint8Array, i: number): number {
  if (bytes[i + 1] !== 0x75) return -1;
  let unit = 0;
  for (let k = i + 2; k < i + 6; k++) {
    const digit = hexDigit(bytes[k]);
    if (digit < 0) return -1;
    unit = unit * 16 + digit;
  }
  return unit;
}

function hexDigit(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/** The body as text after the checks every body gets: UTF-8, nesting, NUL. */
function checkedText(bytes: Uint8Array): string {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch (cause) {
    throw new MalformedBodyError("Cannot read the body: it is not valid UTF-8", { cause });
  }
  const fault = checkJsonBytes(bytes);
  if (fault === "too-deep") {
    throw new MalformedBodyError(
      `Cannot read the body: it nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  if (fault === "nul") {
    throw new MalformedBodyError(
      "Cannot read the body: strings must not contain NUL characters (U+0000)",
    );
  }
  if (fault === "lone-surrogate") {
    throw new MalformedBodyError(
      "Cannot read the body: strings must not contain an unpaired surrogate (\\ud800-\\udfff)",
    );
  }
  return text;
}

/**
 * True when the request carries a body (used for DELETE, where one is optional). Decided by the
 * framing headers: a server may hand over an empty stream for a request that has no body.
 */
export function hasBody(request: Request): boolean {
  const length = request.headers.get("Content-Length");
  if (length !== null) return length.trim() !== "0";
  return request.headers.has("Transfer-Encoding");
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * The body stream failed: Deno.serve fails it when the chunked framing breaks or the client stops
 * sending before the declared length. The client's bytes, so a 400 (it was a 500 and an
 * error-level log line).
 */
function brokenBody(cause: unknown): never {
  throw new MalformedBodyError(
    "Cannot read the body: it broke off or its chunked framing is malformed",
    { cause },
  );
}

/** Reads the stream within `limitBytes` and `timeoutMs`; a slow or large body is cancelled. */
async function readLimited(
  stream: ReadableStream<Uint8Array>,
  limitBytes: number,
  timeoutMs: number,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new RequestTimeoutError(`Cannot read the body: it did not arrive within ${timeoutMs} ms`),
      );
    }, timeoutMs);
  });
  expired.catch(() => {});
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read().catch(brokenBody), expired]);
      if (done) return concat(chunks, total);
      total += value.byteLength;
      if (total > limitBytes) throw tooLarge(limitBytes);
      chunks.push(value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A body in a content coding (`gzip`) is not read: 415, as RFC 9110 (§15.5.16) asks of a coding
 * the server does not take. It was read as is and refused as "not valid UTF-8" (400), which sent
 * a client looking at its text rather than at the header (found by a review).
 */
function refuseContentCoding(coding: string | null): void {
  const codings = (coding ?? "").split(",").map((c) => c.trim().toLowerCase()).filter(Boolean);
  if (codings.every((c) => c === "identity")) return;
  throw new UnsupportedMediaTypeError(
    `Cannot read the body: content coding "${coding}" is not supported; send it uncompressed`,
    { header: "Content-Encoding" },
  );
}

async function readBytes(
  request: Request,
  limitBytes: number,
  timeoutMs: number,
): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array();
  refuseContentCoding(request.headers.get("Content-Encoding"));
  const declared = request.headers.get("Content-Length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limitBytes) {
    throw tooLarge(limitBytes);
  }
  return await readLimited(request.body, limitBytes, timeoutMs);
}

/**
 * The request body as text, within the size and time limits and checked like every body
 * (UTF-8, nesting, NUL): for routes that verify a signature over the exact bytes.
 */
export async function readTextBody(
  request: Request,
  limitBytes: number,
  timeoutMs = DEFAULT_BODY_TIMEOUT_MS,
): Promise<string> {
  return checkedText(await readBytes(request, limitBytes, timeoutMs));
}

/**
 * Where `value` holds a number too large for a double (`1e999`, or 400 digits), as a JSON
 * pointer; undefined when none. Such a number parses as Infinity, which travels on as `null`
 * (JSON has no Infinity): the service then said "quantity must not be null" (a review). One walk
 * over what was parsed, linear in its size (a reviver tripled every parse; a regex pre-check
 * missed long mantissas and rescanned digit runs).
 */
function overflowAt(value: unknown, pointer = ""): string | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? undefined : pointer;
  if (typeof value !== "object" || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = overflowAt(item, `${pointer}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The request body parsed as a JSON object: 413 above `limitBytes`, 408 when it does not
 * arrive within `timeoutMs`, 400 when it is not UTF-8, nests too deep, holds a NUL, is not JSON
 * or not an object.
 *
 * @example
 * ```ts
 * import { readJsonBody } from "./body.ts";
 * const request = new Request("http://x/", { method: "POST", body: '{"data":{}}' });
 * console.log(await readJsonBody(request, 1_000)); // { data: {} }
 * ```
 */
export async function readJsonBody(
  request: Request,
  limitBytes: number,
  timeoutMs = DEFAULT_BODY_TIMEOUT_MS,
): Promise<Record<string, unknown>> {
  const text = checkedText(await readBytes(request, limitBytes, timeoutMs));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new MalformedBodyError("Cannot read the body: it is not valid JSON", { cause });
  }
  const overflow = overflowAt(parsed);
  if (overflow !== undefined) {
    throw new BadRequestError("Cannot read the body: a number is out of range", {
      pointer: overflow,
    });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new MalformedBodyError("Cannot read the body: it must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}
