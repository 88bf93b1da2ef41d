/**
 * Cross-origin requests from browsers (CORS, Fetch standard §3.2), allowed from every origin as
 * the original allowed them (flask-cors with `origins: "*"`): Open Event's web client is served
 * from another origin than its API, and without these headers a browser hides every answer from
 * it and refuses to send any request that needs a preflight (all JSON:API ones do).
 *
 * - Every answer carries `Access-Control-Allow-Origin: *` and names the headers a script may read
 *   beyond the safelisted ones (`ETag` for conditional requests, `Location` of a created
 *   resource, `WWW-Authenticate` of a 401, ...). The same value for every origin, so cached replies and the short ways of
 *   cache hits (gateway/http_cache.ts) carry them unchanged and no `Vary: Origin` is needed.
 * - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here, before host
 *   checks, authentication and routing: 204 with the methods the API serves, the request headers
 *   asked for, and a max age so a browser does not repeat it before every request.
 * - Credentials (cookies, HTTP authentication) are never allowed: the API authenticates with the
 *   `Authorization` header, which a page can only send when its own script holds the token.
 *
 * Not Hono's `cors()`: it sets its headers on the placeholder response before the handler runs,
 * so Hono then copies every response to merge them in (a cost on every request, and cache hits
 * are recognised by their response object: gateway/hit_path.ts). These go on the response after.
 */
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../env.ts";

/** The headers every answer carries, in the order they are written. */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Expose-Headers":
    "ETag, Location, Retry-After, WWW-Authenticate, X-Cache, X-Request-Id",
};

/** What a preflight allows: the methods of the API's routes. */
const ALLOWED_METHODS = "GET, HEAD, POST, PATCH, DELETE";
/** Seconds a browser may reuse a preflight's answer (Chromium caps it at 7,200). */
const PREFLIGHT_MAX_AGE = "600";
/** A list of header names (tokens), as a preflight asks for them; anything else is not echoed. */
const HEADER_NAMES = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;
const MAX_REQUESTED_HEADERS = 1_000;

function preflight(requestedHeaders: string | undefined): Response {
  const headers = new Headers({
    ...CORS_HEADERS,
    "Access-Control-Allow-Methods": ALLOWED_METHODS,
    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    // The answer echoes the headers asked for: a cache must not give it to another preflight.
    "Vary": "Access-Control-Request-Headers",
  });
  const asked = requestedHeaders?.trim();
  if (asked && asked.length <= MAX_REQUESTED_HEADERS && HEADER_NAMES.test(asked)) {
    headers.set("Access-Control-Allow-Headers", asked);
  }
  return new Response(null, { status: 204, headers });
}

/**
 * Answers preflights and adds `CORS_HEADERS` to every other answer.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { cors } from "./cors.ts";
 * const app = new Hono();
 * app.use("*", cors());
 * ```
 */
export function cors(): MiddlewareHandler<GatewayEnv> {
  return async function corsMiddleware(c, next) {
    if (c.req.method === "OPTIONS" && c.req.header("Access-Control-Request-Method") !== undefined) {
      return preflight(c.req.header("Access-Control-Request-Headers"));
    }
    await next();
    withCorsHeaders(c.res.headers);
  };
}

/** Adds the CORS headers every answer carries, unless they are there already. */
export function withCorsHeaders(headers: Headers): void {
  // Replies built by gateway/http_cache.ts have them already (in the order the relay writes).
  if (headers.has("Access-Control-Allow-Origin")) return;
  for (const name in CORS_HEADERS) headers.set(name, CORS_HEADERS[name]);
}
