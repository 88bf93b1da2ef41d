/**
 * The Host header must be a host name or address, maybe with a port (400 otherwise). `Deno.serve`
 * builds `Request.url` as the scheme, then Host, then the target, without checking Host, so a Host
 * holding `?` or `/` would move where the path or the query seems to start: the router, the cache
 * key and the cache's short way (gateway/hit_path.ts) could each read another request from it,
 * and one visitor's request could decide what the cache answers everyone else.
 */
import type { MiddlewareHandler } from "hono";
import { BadRequestError } from "@shared/errors.ts";
import type { GatewayEnv } from "../env.ts";

/**
 * A host name (letters, digits, `.`, `-`, and `_` and `~`, which container names use), an IPv4 or
 * bracketed IPv6 address, and maybe a port: nothing that could end an authority (`/`, `?`, `#`,
 * `@`).
 */
const AUTHORITY = /^[A-Za-z0-9._~\-\[\]:]+$/;

/** Whether `host` (a Host header's value) is one a URL can be built from as it stands. */
export function isAuthority(host: string): boolean {
  return AUTHORITY.test(host);
}

/**
 * Refuses a request whose Host is not an authority (a missing one is left to the HTTP server).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { validHost } from "./host.ts";
 * const app = new Hono();
 * app.use("*", validHost());
 * ```
 */
export function validHost(): MiddlewareHandler<GatewayEnv> {
  return async function validHostMiddleware(c, next) {
    const host = c.req.header("Host");
    if (host !== undefined && !isAuthority(host)) {
      throw new BadRequestError("Cannot read the Host header: it is not a host name or address", {
        header: "Host",
      });
    }
    await next();
  };
}
