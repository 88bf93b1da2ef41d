/**
 * Login (the original's app/api/auth.py): plain JSON in and out, as the original and its
 * clients speak it; failures are JSON:API error documents, as every error of this API.
 */
import type { Handler } from "@shared/bus.ts";
import { sign } from "hono/jwt";
import { UnauthorizedError, UnprocessableError } from "@shared/errors.ts";
import { changeWithFact } from "@shared/facts.ts";
import { loginSchema } from "@shared/schemas/catalog.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import type { CatalogContext } from "../context.ts";
import { catalogFact } from "../fact_payloads.ts";
import { dummyHash, verifyPassword } from "../passwords.ts";
import type { UserRow } from "../store/common.ts";
import { findUserForLogin } from "../store/users.ts";

const TOKEN_LIFETIME_S = 24 * 3600;

/**
 * Issues the JWT the gateway verifies: HS256, one day, subject = user id, `ver` = the user's
 * token version as login read it with the password (a change since makes it stale: 401).
 */
export async function issueToken(
  user: Pick<UserRow, "id" | "token_version">,
  secret: string,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const sub = String(user.id);
  return await sign(
    {
      sub,
      identity: sub,
      ver: user.token_version,
      iat: now,
      nbf: now,
      exp: now + TOKEN_LIFETIME_S,
    },
    secret,
    "HS256",
  );
}

/**
 * The live user whose email and password `body` holds (`{"email","password"}`, or `username`):
 * 422 when either is missing, 401 when they do not match. An unknown email costs the same PBKDF2
 * work as a wrong password: the time tells nothing.
 */
async function authenticate(ctx: CatalogContext, body: unknown, action: string) {
  const parsed = loginSchema.safeParse(body);
  if (!parsed.success) {
    throw new UnprocessableError(`Cannot ${action}: email and password are required`, {
      pointer: "/email",
    });
  }
  const user = await findUserForLogin(ctx.sql, parsed.data.email);
  const stored = user?.password_hash ?? dummyHash(ctx.config.passwordIterations);
  const ok = await verifyPassword(parsed.data.password, stored);
  if (!user || !ok) throw new UnauthorizedError(`Cannot ${action}: wrong email or password`);
  return user;
}

/** A token for `user`, announced as a `user.logged-in` fact (and so an activity). */
async function loggedIn(ctx: CatalogContext, user: UserRow): Promise<HttpReply> {
  const token = await issueToken(user, ctx.config.jwtSecret);
  await changeWithFact(
    ctx.sql,
    ctx.relay,
    () => Promise.resolve(user),
    () => catalogFact({ id: user.id, email: user.email }, "user", "logged-in", user),
  );
  return { status: 200, body: { access_token: token } };
}

/** `POST /v1/auth/login`: plain JSON in and out (as the original), a fact for each login. */
function login(ctx: CatalogContext): Handler<HttpRequest, HttpReply> {
  return async (req) => await loggedIn(ctx, await authenticate(ctx, req.body, "log in"));
}

export function authHandlers(ctx: CatalogContext) {
  return {
    login: login(ctx),
  };
}
