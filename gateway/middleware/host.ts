/**
 * The Host header must be a host name or address, maybe with a port (400 otherwise). `Deno.serve`
 * builds `Request.url` as the scheme, then Host, then the target, without checking Host, so a Host
 * holding `?` or `/` would move where the path or the query seems to start: the router, the cache
 * key and the cache's short way (gateway/hit_path.ts) could each read another request from it,
 * and one visitor's request could decide what the cache answers everyone else. An absolute-form
 * target (`GET http://x?page%5Bsize%5D=3&a=/v1/event-topics`) brings its own authority instead of
 * Host's, unchecked too: Hono routed `/v1/event-topics` (the first `/` after the scheme), and the
 * short ways remembered that query for the plain `GET /v1/event-topics` of everyone else (a
 * review, 2026-12-03). So the URL's authority must be one as well.
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

/**
 * The last authority found valid (with its scheme): nearly every request to a gateway names the
 * same one, which then costs a comparison instead of a URL parse.
 */
let lastValid = "";

/**
 * Whether `prefix` (a scheme, `//` and an authority whose characters passed) makes a URL: WHATWG
 * URL's own rules (one colon outside brackets, a port up to 65535, an IPv4 address in range...).
 * Without this check, `new Request` of a write's URL (its preconditions' read) threw on Host `[`
 * or `a:99999`, a 500 (a review, 2026-12-05).
 */
function parses(prefix: string): boolean {
  if (prefix === lastValid) return true;
  if (!URL.canParse(`${prefix}/`)) return false;
  lastValid = prefix;
  return true;
}

/** Whether `host` (a Host header's value) is one a URL can be built from as it stands. */
export function isAuthority(host: string): boolean {
  return AUTHORITY.test(host) && parses(`http://${host}`);
}

/**
 * What `Deno.serve` may build `Request.url`'s authority from: an authority as above, or, for a
 * request without Host behind the slow-client relay, its Unix socket's path, percent-encoded
 * (`http+unix://%2Ftmp%2F...%2Esock/v1/events`).
 */
const URL_AUTHORITY = /^[A-Za-z0-9._~%\-\[\]:]+$/;

/**
 * The authority `Request.url` was built with (what lies between `//` and the path) when it is
 * one the path can be read after: no `?`, `#`, `@` or anything else that could move where the
 * path starts. Undefined otherwise.
 */
export function urlAuthority(url: string): string | undefined {
  const start = url.indexOf("//") + 2;
  const path = url.indexOf("/", start);
  if (start < 2 || path === -1) return undefined;
  const authority = url.slice(start, path);
  return URL_AUTHORITY.test(authority) && parses(url.slice(0, path)) ? authority : undefined;
}

/** Why `urlAuthority` could not read `url`: no path after the authority, or no authority. */
function targetProblem(url: string): string {
  const start = url.indexOf("//") + 2;
  const rest = url.slice(start);
  const authorityOnly = rest.split(/[?#]/, 1)[0];
  if (!authorityOnly.includes("/") && URL_AUTHORITY.test(authorityOnly)) {
    return "Cannot read the request target: an absolute URL needs a path after its host " +
      "(http://host/v1/...)";
  }
  return "Cannot read the request target: its authority is not a host name or address";
}

/**
 * Refuses a request whose Host is not an authority (a missing one is left to the HTTP server),
 * nor the authority of its URL (an absolute-form target's own).
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
    if (urlAuthority(c.req.url) === undefined) throw new BadRequestError(targetProblem(c.req.url));
    await next();
  };
}
