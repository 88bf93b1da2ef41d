/**
 * `If-Match` and `If-None-Match` on writes (RFC 9110 §13.1.1, §13.1.2): a client that read a
 * resource and sends its `ETag` back with a PATCH or DELETE in `If-Match` asks that the write go
 * ahead only if nobody changed the resource since (a lost update: two organizers editing one
 * event); in `If-None-Match`, only if it is no longer that representation (`*`: only if there is
 * none). The ETag is this gateway's hash of a representation that may merge several services'
 * resources, so no one service can evaluate it; the gateway does, by reading the target as the
 * caller would read it now (a GET of the same URL with the same credentials, through its own
 * routes). `If-Match` compares the strong way (a `W/` tag never matches; `*` matches any current
 * representation) and is evaluated first; `If-None-Match` the weak way, as on reads. A failed one
 * is a 412 and nothing is forwarded, unless the write carries an `Idempotency-Key`: then it is
 * forwarded marked, and its service replays the key's stored answer (a retry of a change already
 * made, which made the tag stale: RFC 9110 §13.2.2 allows the 2xx) or answers 412 without running
 * it. Where that read does not answer 200 (no such resource, no GET on the route, not the caller's
 * to read) the conditions are ignored, as §13.2.1 asks: the write answers for itself. A read that
 * fails (503, 504) is the write's answer: nothing was forwarded, try again.
 *
 * Atomic for what the write changes: the read tells the database snapshot its service answered
 * under, and the write carries it to the same service, which refuses it (412) when a resource it
 * changes was changed by a transaction that snapshot did not see (shared/read_snapshot.ts). A
 * change of another service's resource that the document includes is not covered.
 *
 * @example
 * ```ts ignore
 * app.use("/v1/*", writePreconditions((request) => app.fetch(request)));
 * ```
 */
import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { failedPrecondition, type WritePrecondition } from "@shared/errors.ts";
import { matchesEtag } from "../http_cache.ts";
import { askSnapshot, snapshotOf } from "../read_snapshots.ts";
import type { GatewayEnv } from "../env.ts";

/** What a write carries that its read must not: its body, and the conditions themselves. */
const NOT_FOR_THE_READ = [
  "content-type",
  "content-length",
  "transfer-encoding",
  "expect",
  "if-match",
  "if-none-match",
  "if-modified-since",
  "if-unmodified-since",
  "idempotency-key",
];

/** Whether `ifMatch` (the header's value) names `etag`, or `*`, compared the strong way. */
export function matchesStrongly(ifMatch: string, etag: string): boolean {
  return ifMatch.split(",").some((tag) => {
    const trimmed = tag.trim();
    return trimmed === "*" || trimmed === etag;
  });
}

/** The GET of a write's target, as its caller would send it. */
function readOf(raw: Request, requestId: string): Request {
  const headers = new Headers(raw.headers);
  for (const name of NOT_FOR_THE_READ) headers.delete(name);
  headers.set("X-Request-Id", requestId);
  return new Request(raw.url, { method: "GET", headers });
}

/**
 * The precondition of a write that fails on a target whose current representation is tagged `etag`
 * (RFC 9110 §13.2.2: `If-Match` first, then `If-None-Match`), if one does.
 */
function failing(
  ifMatch: string | undefined,
  ifNoneMatch: string | undefined,
  etag: string,
): WritePrecondition | undefined {
  if (ifMatch !== undefined && !matchesStrongly(ifMatch, etag)) return "If-Match";
  if (ifNoneMatch !== undefined && matchesEtag(ifNoneMatch, etag)) return "If-None-Match";
  return undefined;
}

/**
 * Checks a write's `If-Match` and `If-None-Match` against the target's current representation
 * (`read` answers it).
 */
export function writePreconditions(
  read: (request: Request) => Response | Promise<Response>,
): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    const ifMatch = c.req.header("If-Match");
    const ifNoneMatch = c.req.header("If-None-Match");
    const method = c.req.method;
    const unconditional = ifMatch === undefined && ifNoneMatch === undefined;
    if (unconditional || method === "GET" || method === "HEAD" || method === "OPTIONS") {
      return await next();
    }
    // Only a method the route has (middlewares and the 405 fallback match as ALL): anything else
    // is the path's 405, which preconditions must not turn into a 412 or a failed read's 503
    // (RFC 9110 §13.2.1).
    if (!matchedRoutes(c).some((route) => route.method === method)) return await next();
    const readRequest = askSnapshot(readOf(c.req.raw, c.get("requestId")));
    const current = await read(readRequest);
    if (current.status >= 500) return current;
    const etag = current.headers.get("ETag");
    await current.body?.cancel();
    const evaluated = current.status === 200 && etag !== null;
    const failed = evaluated ? failing(ifMatch, ifNoneMatch, etag) : undefined;
    if (failed) {
      // A keyed write may be the retry of one already applied (its own change made the tag
      // stale): only its service knows, and answers it from the key or with the same 412.
      if (!c.req.header("Idempotency-Key")) throw failedPrecondition(failed);
      c.set("preconditionFailed", failed);
    }
    const snapshot = snapshotOf(readRequest);
    if (evaluated && !failed && snapshot) {
      c.set("unchangedSince", {
        ...snapshot,
        header: ifMatch !== undefined ? "If-Match" : "If-None-Match",
      });
    }
    await next();
  };
}
