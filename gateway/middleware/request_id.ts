/**
 * Request ids and the access log: reuses a sane incoming `X-Request-Id` (so a caller can trace
 * a request through its own logs), else makes one, echoes it, and logs one line per request.
 */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "@shared/log.ts";
import type { GatewayEnv } from "../env.ts";

const SANE_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** The incoming id when it is safe to log and echo, else a fresh UUID. */
export function pickRequestId(incoming: string | null): string {
  return incoming !== null && SANE_ID.test(incoming) ? incoming : crypto.randomUUID();
}

/** The longest path an access line holds; a longer one is cut, its length logged beside. */
export const LOGGED_PATH_MAX = 512;

/**
 * The fields of one access line (`request`): method, path (never the query string, which may hold
 * tokens), status, duration since `began`, request id. A path longer than LOGGED_PATH_MAX is cut
 * there and `pathLength` says how long it was: logged whole, 100 requests with 60 kB paths (404s)
 * added 6 MB to the log, a byte of log per byte a client sends (a growth review, 2026-12-05).
 */
export function accessLine(
  method: string,
  path: string,
  status: number,
  began: number,
  requestId: string,
): Record<string, unknown> {
  const ms = Math.round((performance.now() - began) * 10) / 10;
  if (path.length <= LOGGED_PATH_MAX) return { method, path, status, ms, requestId };
  const cut = path.slice(0, LOGGED_PATH_MAX);
  return { method, path: cut, pathLength: path.length, status, ms, requestId };
}

/**
 * Sets `c.var.requestId` and the `X-Request-Id` response header, and logs method, path (never the
 * query string, which may hold tokens), status and duration.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createLogger } from "@shared/log.ts";
 * import { requestId } from "./request_id.ts";
 * const app = new Hono();
 * app.use("*", requestId({ logger: createLogger("gateway") }));
 * ```
 */
export function requestId(options: { logger: Logger }): MiddlewareHandler<GatewayEnv> {
  const log = options.logger;
  return async function requestIdMiddleware(c, next) {
    const began = performance.now();
    const id = pickRequestId(c.req.header("X-Request-Id") ?? null);
    c.set("requestId", id);
    await next();
    // Our responses are built with mutable headers; setting one here avoids Hono re-creating them.
    c.res.headers.set("X-Request-Id", id);
    log.info("request", accessLine(c.req.method, c.req.path, c.res.status, began, id));
  };
}
