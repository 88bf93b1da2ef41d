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
    log.info("request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - began) * 10) / 10,
      requestId: id,
    });
  };
}
