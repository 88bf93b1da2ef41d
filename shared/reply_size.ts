/**
 * Answers that fit on the bus. NATS refuses a message larger than its server's `max_payload`
 * (1 MiB by default): publishing one throws. Unchecked, the answer never left, the requester
 * waited for its timeout (504), and the rejection, unhandled, stopped the process (found by a
 * review: ten events with long descriptions, listed anonymously, stopped the whole system; a PATCH
 * with `include=tickets` was answered 504 after its change had committed). So every answer is
 * measured before it is sent (shared/bus.ts):
 * - a done write (POST, PATCH, DELETE) is answered as done, without what it included (else with
 *   its identifier only), and `meta.include-unavailable` says why, as the gateway answers a write
 *   whose includes another service could not give: a client told it failed would retry it;
 * - anything else becomes a 400 that says how to ask for less (a smaller page, fewer includes);
 *   an answer to another service (not an HTTP request) a 500, with the sizes in the log, unless
 *   its endpoint answers a client's read for that service (`readForClient`: a page of a code's
 *   tickets, `catalog.internal.list`), whose requester passes the 400 on.
 *
 * @example
 * ```ts
 * import { headers } from "@nats-io/nats-core";
 * import { fitToBus } from "@shared/reply_size.ts";
 * const answer = { status: 200, headers: headers(), body: new Uint8Array(10) };
 * fitToBus(answer, { limit: 1024, http: { method: "GET" } }) === answer; // true
 * ```
 */
import type { MsgHdrs } from "@nats-io/nats-core";
import { BadRequestError, InternalError } from "./errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An answer ready to send. */
export interface SizedAnswer {
  status: number;
  headers: MsgHdrs;
  body: Uint8Array;
}

/** The NATS headers `setHttpHeaders` (shared/bus.ts) writes that ask the gateway to merge more. */
const MERGE_HEADERS = ["Foreign-Includes", "Foreign-Relations"];
const WRITES = new Set(["POST", "PATCH", "DELETE"]);

/**
 * Bytes the headers take on the wire (`NATS/1.0`, `name: value` lines): `length` counts a text's
 * UTF-8 bytes (exact), or bounds them without encoding (three per UTF-16 unit: cheap enough for
 * every answer). A fixed 64 KiB allowance for headers let an answer with 74 kB of cache tags
 * through unmeasured (a review).
 */
function headersSize(headers: MsgHdrs, length: (text: string) => number): number {
  let size = 12;
  for (const name of headers.keys()) {
    for (const value of headers.values(name)) size += length(name) + length(value) + 4;
  }
  return size;
}

const utf8Length = (text: string) => encoder.encode(text).length;
const utf8Bound = (text: string) => 3 * text.length;

function sizeOf(answer: SizedAnswer): number {
  return answer.body.length + headersSize(answer.headers, utf8Length);
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;

/** An HTTP request whose answer the bus cannot carry: the requester may ask for less. */
export class ReplyTooLargeError extends BadRequestError {}

/**
 * `answer` if it fits in `limit` bytes; otherwise a done write's answer without its included
 * resources, or an error (thrown) saying how big the answer was.
 */
export function fitToBus(
  answer: SizedAnswer,
  options: { limit: number; http?: { method?: string } },
): SizedAnswer {
  if (answer.body.length + headersSize(answer.headers, utf8Bound) <= options.limit) return answer;
  const size = sizeOf(answer);
  if (size <= options.limit) return answer;
  const { http, limit } = options;
  const done = http && WRITES.has(http.method ?? "") && answer.status < 300;
  if (done) {
    // Answered as done whatever it takes: without its includes, else with its identifier only.
    const trimmed = shrunk(answer, size, false);
    if (trimmed && sizeOf(trimmed) <= limit) return trimmed;
    const least = shrunk(answer, size, true);
    if (least && sizeOf(least) <= limit) return least;
  }
  const what = `the answer is ${mib(size)}, more than the ${mib(limit)} the bus carries`;
  if (!http) throw new InternalError(`Cannot answer: ${what}`);
  throw new ReplyTooLargeError(
    `Cannot answer: ${what}; ask for less (a smaller page[size], fewer include paths, ` +
      `fields[<type>])`,
  );
}

/**
 * A done write's document without `included` (and, `identifierOnly`, its data reduced to type
 * and id), saying why in `meta.include-unavailable`.
 */
function shrunk(
  answer: SizedAnswer,
  size: number,
  identifierOnly: boolean,
): SizedAnswer | undefined {
  let document: { data?: unknown; included?: unknown; meta?: Record<string, unknown> };
  try {
    document = JSON.parse(decoder.decode(answer.body));
  } catch {
    return undefined;
  }
  if (typeof document !== "object" || document === null) return undefined;
  delete document.included;
  if (identifierOnly) document.data = identifierOf(document.data);
  document.meta = {
    ...document.meta,
    "include-unavailable": `The change is done; what it included is not (the answer was ` +
      `${mib(size)}, more than the bus carries): read it with a smaller page or fewer includes.`,
  };
  for (const name of MERGE_HEADERS) answer.headers.delete(name);
  return { ...answer, body: encoder.encode(JSON.stringify(document)) };
}

function identifierOf(data: unknown): unknown {
  if (Array.isArray(data)) return data.map(identifierOf);
  if (typeof data !== "object" || data === null) return data;
  const { type, id } = data as { type?: unknown; id?: unknown };
  return { type, id };
}
