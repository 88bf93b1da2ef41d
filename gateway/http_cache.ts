/**
 * HTTP caching of forwarded replies: cache keys, strong ETags, `If-None-Match` and the
 * `Cache-Control` every reply carries (after the CORS headers, middleware/cors.ts). Public replies say `public, no-cache` (clients and CDNs
 * keep them but revalidate: the ETag makes that a cheap 304) and `Vary: Authorization` (a CDN
 * must not hand an anonymous page to a signed-in user, who may see more); everything else says
 * `private, no-store`. Replies the cache could hold say whether they came from it
 * (`X-Cache: HIT` or `MISS`).
 *
 * @example
 * ```ts
 * import { cacheKey, etagOf, matchesEtag } from "./http_cache.ts";
 * cacheKey("application/vnd.api+json", "/v1/events", { sort: "name", "page[size]": "5" });
 * // "application/vnd.api+json /v1/events?page%5Bsize%5D=5&sort=name"
 * const etag = etagOf(new TextEncoder().encode("{}"));
 * matchesEtag(`W/${etag}, "other"`, etag); // true
 * ```
 */
import { createHash } from "node:crypto";
import type { CachedReply } from "./cache.ts";
import { CHALLENGE } from "./middleware/auth.ts";
import { CORS_HEADERS } from "./middleware/cors.ts";

export const PUBLIC = "public, no-cache";
export const PRIVATE = "private, no-store";

/**
 * The key of a read: media type, path and the query as the service reads it (one value per
 * name, the first one counting), names sorted and every part escaped, so two keys are equal only
 * when the service is asked exactly the same thing.
 */
export function cacheKey(mediaType: string, path: string, query: Record<string, string>): string {
  const names = Object.keys(query);
  if (names.length === 0) return `${mediaType} ${path}`;
  const pairs = names.sort().map((name) =>
    `${encodeURIComponent(name)}=${encodeURIComponent(query[name])}`
  );
  return `${mediaType} ${path}?${pairs.join("&")}`;
}

/** A strong validator: SHA-1 of the exact bytes (native, ~7 µs for 6 kB). */
export function etagOf(body: Uint8Array): string {
  return `"${createHash("sha1").update(body).digest("base64url")}"`;
}

/** Whether an `If-None-Match` value matches `etag` (weak comparison, as RFC 9110 asks). */
export function matchesEtag(ifNoneMatch: string | null, etag: string): boolean {
  if (ifNoneMatch === null) return false;
  for (const candidate of ifNoneMatch.split(",")) {
    const tag = candidate.trim();
    if (tag === "*" || tag === etag || tag === `W/${etag}`) return true;
  }
  return false;
}

export interface ReplyParts {
  status: number;
  body: BodyInit | null;
  contentType: string;
  location?: string;
  etag?: string;
  /** `Retry-After` (seconds) of a service's refusal when it was too busy. */
  retryAfter?: string;
  /** Whether the reply may be shared by caches (`public, no-cache`). */
  shared: boolean;
  /** Whether the gateway's cache answered (`X-Cache`), when it was asked. */
  cache?: "HIT" | "MISS";
}

/** A reply's status and headers, in the order they go out (a 304 when `If-None-Match` matches). */
function replyHead(parts: ReplyParts, ifNoneMatch: string | null) {
  const headers: Record<string, string> = {
    ...CORS_HEADERS,
    "Cache-Control": parts.shared ? PUBLIC : PRIVATE,
  };
  // A service's 401 (a revoked token, a login with wrong credentials) relayed as it came.
  if (parts.status === 401) headers["WWW-Authenticate"] = CHALLENGE;
  if (parts.shared) headers["Vary"] = "Authorization";
  if (parts.cache) headers["X-Cache"] = parts.cache;
  if (parts.etag) {
    headers["ETag"] = parts.etag;
    if (matchesEtag(ifNoneMatch, parts.etag)) return { status: 304, headers, notModified: true };
  }
  if (parts.status !== 204) headers["Content-Type"] = parts.contentType;
  if (parts.location) headers["Location"] = parts.location;
  if (parts.retryAfter) headers["Retry-After"] = parts.retryAfter;
  return { status: parts.status, headers, notModified: false };
}

/** The response for a reply, or a bodiless 304 when the request's `If-None-Match` matches. */
export function httpReply(parts: ReplyParts, ifNoneMatch: string | null): Response {
  const { status, headers, notModified } = replyHead(parts, ifNoneMatch);
  const body = notModified || status === 204 ? null : parts.body;
  return new Response(body, { status, headers });
}

/** The reply parts of a cache hit. */
function hitParts(entry: CachedReply): ReplyParts {
  return {
    status: entry.status,
    body: entry.body as Uint8Array<ArrayBuffer>,
    contentType: entry.contentType,
    etag: entry.status === 200 ? entry.etag : undefined,
    shared: true,
    cache: "HIT",
  };
}

/** The response for a cache hit. */
export function cachedReply(entry: CachedReply, ifNoneMatch: string | null): Response {
  return httpReply(hitParts(entry), ifNoneMatch);
}

/**
 * The reason phrases `Deno.serve` writes (hyper's, read off Deno 2.9 for every status from 200 to
 * 599); for any other status it writes none.
 */
const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  208: "Already Reported",
  226: "IM Used",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  305: "Use Proxy",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Payload Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  418: "I'm a teapot",
  421: "Misdirected Request",
  422: "Unprocessable Entity",
  423: "Locked",
  424: "Failed Dependency",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  506: "Variant Also Negotiates",
  507: "Insufficient Storage",
  508: "Loop Detected",
  510: "Not Extended",
  511: "Network Authentication Required",
};

const encoder = new TextEncoder();

/** `Date` as `Deno.serve` writes it, made once a second. */
let dateSecond = -1;
let dateValue = "";
function httpDate(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}

/**
 * Bodies up to this size go out in one write with their head (copied after it: one system call);
 * larger ones in a write of their own, not copied, so that big pages cost no per-hit allocation.
 */
const JOIN_LIMIT = 16 * 1024;

/** A reply's answer to a GET, as the bytes to write in order (see `replyBytes`). */
export interface WireReply {
  status: number;
  chunks: Uint8Array[];
}

/**
 * A cache hit's answer to a GET as the bytes `Deno.serve` writes for `cachedReply` plus
 * `X-Request-Id`, for the slow-client relay to send itself (see `replyBytes`).
 */
export function cachedReplyBytes(
  entry: CachedReply,
  ifNoneMatch: string | null,
  requestId: string,
): WireReply {
  return replyBytes(hitParts(entry) as WireParts, ifNoneMatch, requestId);
}

/** Reply parts whose body is bytes. */
export type WireParts = ReplyParts & { body: Uint8Array };

/**
 * The answer to a GET as the bytes `Deno.serve` writes for `httpReply(parts)` once the gateway
 * added `X-Request-Id` (the same headers in the same order and spelling, then `content-length`
 * but not on a 304, and `date`), in the order to write them: for the slow-client relay to send
 * itself (gateway/hit_path.ts, gateway/signed_path.ts).
 */
export function replyBytes(
  parts: WireParts,
  ifNoneMatch: string | null,
  requestId: string,
): WireReply {
  const { status, headers, notModified } = replyHead(parts, ifNoneMatch);
  const bodiless = notModified || status === 204;
  // What `httpReply`'s `new Response` refuses (a status outside 200-599, a body on 205 or 304, a
  // Location that is no header value) throws here as it throws on the full path, whose onError
  // answers 500. Written as bytes instead, a service's 304 with a document put that document
  // after a bodiless head: the client read it as the start of the next answer (a review).
  if (
    status < 200 || status > 599 || status === 205 || (status === 304 && !notModified) ||
    parts.location !== undefined
  ) httpReply(parts, ifNoneMatch);
  return wireReply(status, headers, requestId, bodiless ? undefined : parts.body);
}

/**
 * Bytes as `Deno.serve` writes a response with `headers` (then `X-Request-Id`) and `body` (none:
 * no `content-length`, as on a 304).
 */
export function wireReply(
  status: number,
  headers: Readonly<Record<string, string>>,
  requestId: string,
  body: Uint8Array | undefined,
): WireReply {
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n`;
  for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
  head += `X-Request-Id: ${requestId}\r\n`;
  if (body !== undefined) head += `content-length: ${body.length}\r\n`;
  head += `date: ${httpDate(Date.now())}\r\n\r\n`;
  const headBytes = encoder.encode(head);
  if (body === undefined) return { status, chunks: [headBytes] };
  if (body.length > JOIN_LIMIT) return { status, chunks: [headBytes, body] };
  const joined = new Uint8Array(headBytes.length + body.length);
  joined.set(headBytes);
  joined.set(body, headBytes.length);
  return { status, chunks: [joined] };
}
