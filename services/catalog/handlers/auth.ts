/**
 * Login and the original's other `/v1/auth` endpoints (app/api/auth.py): a fresh login, a
 * password change and a logout. Plain JSON in and out, as the original and its clients speak
 * them; failures are JSON:API error documents, as every error of this API (open-event-frontend
 * shows `errors[0].detail` of a refused password change).
 */
import type { Handler } from "@shared/bus_endpoints.ts";
import { sign } from "hono/jwt";
import {
  BadRequestError,
  ConflictError,
  UnauthorizedError,
  UnprocessableError,
} from "@shared/errors.ts";
import { changeWithFact } from "@shared/facts.ts";
import { notFound, requireLogin } from "@shared/handlers/mod.ts";
import {
  loginSchema,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  passwordChangeSchema,
} from "@shared/schemas/catalog.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import type { CatalogContext } from "../context.ts";
import { catalogFact } from "../fact_payloads.ts";
import { dummyHash, hashPassword, verifyPassword } from "../passwords.ts";
import type { UserRow } from "../store/common.ts";
import { findUserForLogin, getUser, recordLogin, updateUser } from "../store/users.ts";
import { type Call, commit, handleAll, publicRecord } from "./common.ts";

const TOKEN_LIFETIME_S = 24 * 3600;

/**
 * Issues the JWT the gateway verifies: HS256, one day, subject = user id, `ver` = the user's
 * token version as login read it with the password (a change since makes it stale: 401).
 */
async function issueToken(
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
 * The member a login body's email is read from: `email` when the body has it (even null or
 * empty), else `username` when it has that, as the original read them (`data.get('email',
 * data.get('username'))`); `email` when it has neither. An error's pointer names it, so a client
 * that sent `username` is pointed at what it sent.
 */
function emailMember(body: unknown): "email" | "username" {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "email";
  const { email, username } = body as Record<string, unknown>;
  return email === undefined && username !== undefined ? "username" : "email";
}

/**
 * The member of a login body that is absent or empty (`emailMember`, or `password`), which the
 * original answered 400 before anything else (`if not all([username, password])`); undefined
 * when both are there (a wrong type is the schema's 422).
 */
function missingCredential(body: unknown): "email" | "username" | "password" | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const { password } = body as Record<string, unknown>;
  const absent = (value: unknown) => value === undefined || value === null || value === "";
  const member = emailMember(body);
  if (absent((body as Record<string, unknown>)[member])) return member;
  if (absent(password)) return "password";
  return undefined;
}

/**
 * Why a login body's `member`, present and not empty, was refused: not text, or text no account
 * has (too long, a NUL); a body that is no object has neither member. Until 2026-12-06 each read
 * "email and password are required", though both were there (a documentation review).
 */
function invalidCredential(body: unknown, member: string): string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "email and password are required";
  }
  const value = (body as Record<string, unknown>)[member];
  return typeof value === "string" ? `${member} is not valid` : `${member} must be text`;
}

/**
 * The live user whose email and password `body` holds (`{"email","password"}`, or `username`):
 * 400 pointing at the member missing or empty (as the original answered; a 422 until 2026-12-04),
 * 422 at one that is not text, 401 when they do not match. An unknown
 * email costs the same PBKDF2 work as a wrong password: the time tells nothing. A password longer
 * than sign-up takes matches no account: 401 at once, as the original answered it (until
 * 2026-12-04 a 422 saying the password was missing), whatever the email, so it tells nothing
 * either.
 */
async function authenticate(ctx: CatalogContext, body: unknown, action: string) {
  const missing = missingCredential(body);
  if (missing) {
    throw new BadRequestError(`Cannot ${action}: email and password are required`, {
      pointer: `/${missing}`,
    });
  }
  const parsed = loginSchema.safeParse(body);
  if (!parsed.success) {
    const member = parsed.error.issues[0]?.path[0] === "password" ? "password" : emailMember(body);
    throw new UnprocessableError(`Cannot ${action}: ${invalidCredential(body, member)}`, {
      pointer: `/${member}`,
    });
  }
  if (parsed.data.password.length > MAX_PASSWORD_LENGTH) {
    throw new UnauthorizedError(`Cannot ${action}: wrong email or password`);
  }
  const user = await findUserForLogin(ctx.sql, parsed.data.email);
  const stored = user?.password_hash ?? dummyHash(ctx.config.passwordIterations);
  const ok = await verifyPassword(parsed.data.password, stored);
  if (!user || !ok) throw new UnauthorizedError(`Cannot ${action}: wrong email or password`);
  return user;
}

/**
 * A token for `user`, whose login is stamped (`last-accessed-at`) and announced as a
 * `user.logged-in` fact (and so an activity) in one transaction. The token carries the version
 * read with the password, so a password changed meanwhile makes it stale (see `issueToken`).
 */
async function loggedIn(ctx: CatalogContext, user: UserRow, action: string): Promise<HttpReply> {
  const token = await issueToken(user, ctx.config.jwtSecret);
  await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx) => {
      const stamped = await recordLogin(tx, user);
      if (!stamped) throw new UnauthorizedError(`Cannot ${action}: wrong email or password`);
      return stamped;
    },
    (stamped) => catalogFact({ id: user.id, email: user.email }, "user", "logged-in", stamped),
  );
  return { status: 200, body: { access_token: token } };
}

/** `POST /v1/auth/login`: plain JSON in and out (as the original), a fact for each login. */
function login(ctx: CatalogContext): Handler<HttpRequest, HttpReply> {
  return async (req) => await loggedIn(ctx, await authenticate(ctx, req.body, "log in"), "log in");
}

/**
 * `POST /v1/auth/fresh-login`: the token's user proves their password again and gets a new
 * token, as from a login. The credentials of anyone else are a 401, as in the original.
 */
async function freshLogin(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const caller = requireLogin(call.caller);
  const user = await authenticate(ctx, call.req.body, "log in again");
  if (String(user.id) !== caller.id) {
    throw new UnauthorizedError("Cannot log in again: these are not the credentials of the token");
  }
  return await loggedIn(ctx, user, "log in again");
}

function badPassword(detail: string, member: "old-password" | "new-password"): never {
  throw new BadRequestError(`Cannot change the password: ${detail}`, {
    pointer: `/data/${member}`,
  });
}

/** The passwords of a change, checked in the original's order: the current one, then the new. */
async function checkedChange(body: unknown, user: UserRow): Promise<string> {
  const parsed = passwordChangeSchema.safeParse(body);
  if (!parsed.success) {
    const path = parsed.error.issues[0]?.path ?? [];
    throw new UnprocessableError(
      "Cannot change the password: data.old-password and data.new-password are required",
      { pointer: `/${path.join("/")}` },
    );
  }
  const { "old-password": old, "new-password": next } = parsed.data.data;
  if (!await verifyPassword(old, user.password_hash)) {
    badPassword("the current password is wrong", "old-password");
  }
  if (await verifyPassword(next, user.password_hash)) {
    badPassword("the new password must differ from the current one", "new-password");
  }
  if (next.length < MIN_PASSWORD_LENGTH) {
    badPassword(
      `the new password must be at least ${MIN_PASSWORD_LENGTH} characters`,
      "new-password",
    );
  }
  return next;
}

/** The original's full name: first and last name, or null unless both are set. */
function fullName(user: UserRow): string | null {
  return user.first_name && user.last_name ? `${user.first_name} ${user.last_name}` : null;
}

/**
 * `POST /v1/auth/change-password`: the caller's current password, then a new one. As a PATCH of
 * the password, it ends every token issued before (the caller's own too: log in again), and is
 * announced as `user.updated`. The answer is the original's, and holds no secret.
 */
async function changePassword(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const caller = requireLogin(call.caller);
  const user = await getUser(ctx.sql, caller.id) ?? notFound("user", caller.id);
  const next = await checkedChange(call.req.body, user);
  const hash = await hashPassword(next, ctx.config.passwordIterations);
  const about = {
    type: "user",
    verb: "updated",
    update: { table: "users", id: user.id, foundLive: true },
  };
  const row = await commit(ctx, call, about, async (tx, current) => {
    // Another change since the check: the old password verified may be the old one no more.
    if (current?.password_hash !== user.password_hash) {
      throw new ConflictError("Cannot change the password: it changed meanwhile; try again");
    }
    return await updateUser(tx, user.id, { password_hash: hash });
  });
  const answer = { id: String(row.id), email: row.email, name: fullName(row) };
  return {
    status: 200,
    body: { ...answer, "password-changed": true },
    // The answer is no user resource, so the gateway reads what changed from here: it drops the
    // user's pages and tells the other services' kept access answers (the old tokens) at once.
    cascaded: [{ type: "user", record: publicRecord("user", row) }],
  };
}

/**
 * `POST /v1/auth/logout`: `{"success": true}`, as the original, whose logout only unset its
 * cookies. Tokens here are stateless: a logout revokes none (a password change does). No token
 * is needed and none is read: a stale one logs out as well.
 */
function logout(): Handler<HttpRequest, HttpReply> {
  return () => Promise.resolve({ status: 200, body: { success: true } });
}

export function authHandlers(ctx: CatalogContext) {
  return {
    login: login(ctx),
    "auth.logout": logout(),
    ...handleAll(ctx, {
      "auth.fresh-login": freshLogin,
      "auth.change-password": changePassword,
    }),
  };
}
