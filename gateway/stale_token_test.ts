import assert from "node:assert/strict";
import { sign } from "hono/jwt";
import { startTestSystem } from "@testing/system.ts";

/**
 * Login and logout read no token (the original's did not either: app/api/auth.py has no
 * `jwt_required` on them), so a stale `Authorization` a client still sends must not stop a user
 * from signing in again, or out. Every other route still refuses a token it cannot verify.
 */
Deno.test("[gateway] login and logout ignore a stale Authorization; other routes still refuse it", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const now = Math.floor(Date.now() / 1000);
  const stale = {
    "an expired token": `JWT ${await sign(
      { sub: user.id, iat: now - 7200, exp: now - 3600 },
      system.config.jwtSecret,
      "HS256",
    )}`,
    "a token signed with another secret": `JWT ${await sign(
      { sub: user.id, iat: now, exp: now + 3600 },
      "another secret of enough length here",
      "HS256",
    )}`,
    "not a token": "JWT not-a-token",
  };
  const json = { "Content-Type": "application/json" };
  for (const [name, authorization] of Object.entries(stale)) {
    for (const path of ["/v1/auth/login", "/v1/auth/session", "/auth/session"]) {
      await t.step(`${name}: POST ${path} with the right password signs in`, async () => {
        const login = await system.call("POST", path, {
          body: { email: user.email, password: user.password },
          headers: { ...json, Authorization: authorization },
        });
        assert.equal(login.status, 200, JSON.stringify(login.body));
        assert.equal(typeof login.body.access_token, "string");
      });
    }
    await t.step(`${name}: a wrong password is still a 401 from the catalog`, async () => {
      const login = await system.call("POST", "/v1/auth/login", {
        body: { email: user.email, password: "not the password" },
        headers: { ...json, Authorization: authorization },
      });
      assert.equal(login.status, 401);
      assert.match(login.body.errors[0].detail, /password|credentials|email/i);
    });
    await t.step(`${name}: POST /v1/auth/logout logs out`, async () => {
      const logout = await system.call("POST", "/v1/auth/logout", {
        body: {},
        headers: { ...json, Authorization: authorization },
      });
      assert.equal(logout.status, 200, JSON.stringify(logout.body));
      assert.deepEqual(logout.body, { success: true });
    });
    await t.step(`${name}: a signed-in route still answers 401`, async () => {
      const me = await system.call("GET", `/v1/users/${user.id}`, {
        headers: { Authorization: authorization },
      });
      assert.equal(me.status, 401);
    });
  }
});
