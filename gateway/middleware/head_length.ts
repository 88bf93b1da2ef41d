/**
 * HEAD answers state the length their GET's body would have (RFC 9110 §8.6). Hono answers HEAD
 * with the GET route's response and drops its body after every middleware has run, and
 * `Deno.serve` then announced `content-length: 0`, which a client or cache may take for the
 * resource's size. Reading the body here costs a copy, on HEAD requests only.
 */
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../env.ts";

/** Sets `Content-Length` on the answer to a HEAD request from the body it would have had. */
export function headLength(): MiddlewareHandler<GatewayEnv> {
  return async function headLengthMiddleware(c, next) {
    await next();
    if (c.req.method !== "HEAD" || c.res.body === null) return;
    if (c.res.headers.has("Content-Length")) return;
    const length = (await c.res.clone().arrayBuffer()).byteLength;
    c.res.headers.set("Content-Length", String(length));
  };
}
