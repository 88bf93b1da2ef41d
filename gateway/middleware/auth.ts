/**
 * Authentication: turns `Authorization: JWT <token>` (or `Bearer <token>`) into `c.var.actor`.
 * No header means an anonymous caller (services decide whether that is enough); a header that
 * does not hold a valid token is a 401 here, so services never see a forged identity.
 */
import type { MiddlewareHandler } from "hono";
import { verify } from "hono/jwt";
import { UnauthorizedError } from "@shared/errors.ts";
import type { Actor } from "@shared/schemas/http.ts";
import type { GatewayEnv } from "../env.ts";

const SCHEME = /^(?:jwt|bearer)[ \t]+(\S+)[ \t]*$/i;

/**
 * The `WWW-Authenticate` challenge every 401 of the API carries (RFC 9110 §11.6.1, §15.5.2): the
 * scheme clients use here (`Authorization: JWT <token>`, as in the original). The same on every
 * 401, whether no token was sent, a bad or expired one, a revoked one or wrong credentials at
 * login: the gateway relays a service's 401 without reading it, and the body's `detail` says why.
 * `GET /metrics` answers with its own (`Bearer`: gateway/metrics.ts).
 */
export const CHALLENGE = 'JWT realm="Open Event"';
/**
 * How far ahead of the gateway's clock a token's `iat` and `nbf` may be: the catalog stamps them
 * with its own clock, on another host perhaps, and a catalog a few milliseconds ahead otherwise
 * made a fresh token a 401 until the gateway's next second.
 */
const CLOCK_SKEW_S = 60;
/** Verified tokens remembered at most (past it the memory starts over). */
const CACHE_LIMIT = 10_000;

interface Verified {
  actor: Actor;
  exp: number;
}

function unauthorized(detail: string): UnauthorizedError {
  return new UnauthorizedError(`Cannot authenticate: ${detail}`, { header: "Authorization" });
}

function subject(sub: unknown): string | undefined {
  if (typeof sub === "string" && sub.length > 0) return sub;
  if (typeof sub === "number" && Number.isSafeInteger(sub)) return String(sub);
  return undefined;
}

/** Whether `claim` (a time) is absent, or a number no later than the gateway's clock allows. */
function notLater(claim: unknown, latest: number): boolean {
  return claim === undefined || (typeof claim === "number" && claim <= latest);
}

async function verifyToken(token: string, secret: string): Promise<Verified> {
  let payload: Record<string, unknown>;
  try {
    // `iat` and `nbf` are checked below, with leeway for the signer's clock.
    payload = await verify(token, secret, { alg: "HS256", iat: false, nbf: false });
  } catch {
    // hono's errors name the reason (expired, bad signature...); the client gets one message.
    throw unauthorized("the token is invalid or expired");
  }
  const latest = Date.now() / 1000 + CLOCK_SKEW_S;
  if (!notLater(payload.iat, latest) || !notLater(payload.nbf, latest)) {
    throw unauthorized("the token is invalid or expired");
  }
  const id = subject(payload.sub);
  if (id === undefined) throw unauthorized("the token names no user");
  if (typeof payload.exp !== "number") throw unauthorized("the token has no expiry");
  // The catalog compares the version with the user's (a password changed since: 401).
  const version = payload.ver;
  if (version === undefined) return { actor: { id }, exp: payload.exp };
  if (!Number.isSafeInteger(version) || (version as number) < 0) {
    throw unauthorized("the token's version is invalid");
  }
  return { actor: { id, tokenVersion: version as number }, exp: payload.exp };
}

/**
 * Verified tokens by value, so that a client reusing its token costs one HMAC, not one per call;
 * shared by the middleware and the gateway's short way of signed-in reads
 * (gateway/signed_path.ts), which takes only tokens verified here before.
 */
export class TokenVerifier {
  readonly #secret: string;
  readonly #verified = new Map<string, Verified>();

  constructor(secret: string) {
    this.#secret = secret;
  }

  /** The actor an `Authorization` value names; a 401 (UnauthorizedError) when it names none. */
  async actorOf(header: string): Promise<Actor> {
    const token = SCHEME.exec(header)?.[1];
    if (token === undefined) throw unauthorized("use 'Authorization: JWT <token>'");
    let verified = this.#unexpired(token);
    if (verified === undefined) {
      verified = await verifyToken(token, this.#secret);
      if (this.#verified.size >= CACHE_LIMIT) this.#verified.clear();
      this.#verified.set(token, verified);
    }
    return verified.actor;
  }

  /**
   * The actor of an `Authorization` value whose token was verified before and has not expired;
   * undefined otherwise (`actorOf` then decides, and says why it refuses).
   */
  knownActor(header: string): Actor | undefined {
    const token = SCHEME.exec(header)?.[1];
    return token === undefined ? undefined : this.#unexpired(token)?.actor;
  }

  #unexpired(token: string): Verified | undefined {
    const verified = this.#verified.get(token);
    return verified !== undefined && verified.exp > Date.now() / 1000 ? verified : undefined;
  }
}

/**
 * Verifies HS256 tokens signed with `secret` (or by `verifier`) and sets `c.var.actor` to
 * `{ id, tokenVersion }` (the `ver` claim, left out when the token has none) or null.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { auth } from "./auth.ts";
 * const app = new Hono();
 * app.use("/v1/*", auth({ secret: "a long random secret" }));
 * ```
 */
export function auth(
  options: ({ secret: string } | { verifier: TokenVerifier }) & {
    /** `METHOD path` of routes that read no token (gateway/routes.ts): anonymous, whatever is sent. */
    ignoredOn?: ReadonlySet<string>;
  },
): MiddlewareHandler<GatewayEnv> {
  const verifier = "verifier" in options ? options.verifier : new TokenVerifier(options.secret);
  const ignoredOn = options.ignoredOn ?? new Set();
  return async function authMiddleware(c, next) {
    const header = c.req.header("Authorization");
    // OPTIONS reads no token either: contracts route no OPTIONS (shared/contract.ts `Method`), so
    // it is a preflight (answered before this), the path's `Allow` (errors.ts) or a 404, and a
    // stale token made that a 401 (a review, 2026-12-04; the original's Flask read none there).
    const read = header !== undefined && c.req.method !== "OPTIONS" &&
      !ignoredOn.has(`${c.req.method} ${c.req.path}`);
    c.set("actor", read ? await verifier.actorOf(header) : null);
    await next();
  };
}
