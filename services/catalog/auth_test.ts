import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem, type TestSystem } from "@testing/system.ts";

const JSON_HEADERS = { "Content-Type": "application/json" };

/** A plain-JSON POST, as open-event-frontend's loader sends it. */
function post(system: TestSystem, path: string, body: unknown, token?: string) {
  return system.call("POST", path, { body, token, headers: JSON_HEADERS });
}

function changePassword(system: TestSystem, token: string | undefined, old: string, next: string) {
  const body = { data: { "old-password": old, "new-password": next } };
  return post(system, "/v1/auth/change-password", body, token);
}

Deno.test("[catalog] POST /v1/auth/change-password changes the password and ends earlier tokens", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  await system.sql`update users set first_name = 'Ada', last_name = 'Lovelace'
    where id = ${user.id}`;
  const other = await system.login(user.email, user.password);
  const newPassword = "a brand new password";
  const before = (await system.readFacts()).length;
  const reply = await changePassword(system, user.token, user.password, newPassword);

  await t.step("answers the original's plain JSON: id, email, name, password-changed", () => {
    expectStatus(reply, 200);
    assert.match(reply.headers.get("Content-Type") ?? "", /^application\/json/);
    assert.deepEqual(reply.body, {
      id: user.id,
      email: user.email,
      name: "Ada Lovelace",
      "password-changed": true,
    });
  });
  await t.step("every token issued before is a 401, the caller's own included", async () => {
    for (const token of [user.token, other]) {
      expectError(await system.call("GET", `/v1/users/${user.id}`, { token }), 401);
    }
  });
  await t.step("the new password logs in, the old one no longer does", async () => {
    const fresh = await system.login(user.email, newPassword);
    expectStatus(await system.call("GET", `/v1/users/${user.id}`, { token: fresh }), 200);
    const old = { email: user.email, password: user.password };
    expectError(await post(system, "/v1/auth/login", old), 401);
  });
  await t.step("announces catalog.user.updated by the user, with no secret in it", async () => {
    const facts = (await system.readFacts()).slice(before);
    const changed = facts.filter((f) => f.type === "catalog.user.updated");
    assert.equal(changed.length, 1);
    assert.equal(changed[0].data.id, user.id);
    assert.equal(changed[0].actorid, user.id);
    assert.doesNotMatch(JSON.stringify(changed[0]), /password|pbkdf2|token/i);
  });
});

Deno.test("[catalog] POST /v1/auth/change-password refuses as the original did", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const cases: [string, string, string, number, string][] = [
    ["a wrong old password", "not the password", "another good password", 400, "old-password"],
    ["a new password of 7 characters", user.password, "seven77", 400, "new-password"],
    ["the same password again", user.password, user.password, 400, "new-password"],
  ];
  for (const [name, old, next, status, member] of cases) {
    await t.step(`${name}: ${status} naming /data/${member}, nothing changed`, async () => {
      const reply = await changePassword(system, user.token, old, next);
      expectError(reply, status);
      assert.equal(reply.body.errors[0].source.pointer, `/data/${member}`);
      expectStatus(await system.call("GET", `/v1/users/${user.id}`, { token: user.token }), 200);
    });
  }
  await t.step("a body without the passwords: 422", async () => {
    const reply = await post(system, "/v1/auth/change-password", { data: {} }, user.token);
    expectError(reply, 422);
    assert.equal(reply.body.errors[0].source.pointer, "/data/old-password");
  });
  await t.step("without a token: 401", async () => {
    expectError(await changePassword(system, undefined, user.password, "whatever it is"), 401);
  });
});

Deno.test("[catalog] POST /v1/auth/fresh-login answers a new token for the token's own user only", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const other = await system.signUp();
  const freshLogin = (token: string | undefined, email: string, password: string) =>
    post(system, "/v1/auth/fresh-login", { email, password }, token);

  await t.step("the caller's own email and password: 200 with a working token", async () => {
    const reply = await freshLogin(user.token, user.email, user.password);
    expectStatus(reply, 200);
    assert.deepEqual(Object.keys(reply.body), ["access_token"]);
    const token = reply.body.access_token;
    expectStatus(await system.call("GET", `/v1/users/${user.id}`, { token }), 200);
  });
  await t.step("a wrong password: 401", async () => {
    expectError(await freshLogin(user.token, user.email, "not the password"), 401);
  });
  await t.step("another user's right credentials: 401, as the original", async () => {
    expectError(await freshLogin(user.token, other.email, other.password), 401);
  });
  await t.step("without a token: 401", async () => {
    expectError(await freshLogin(undefined, user.email, user.password), 401);
  });
  await t.step("without a password: 400, as the original", async () => {
    const reply = await post(system, "/v1/auth/fresh-login", { email: user.email }, user.token);
    expectError(reply, 400, { pointer: "/password" });
  });
});

Deno.test("[catalog] POST /v1/auth/logout answers success and revokes nothing", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  for (const token of [undefined, user.token]) {
    await t.step(token ? "with a token" : "without a token", async () => {
      const reply = await post(system, "/v1/auth/logout", {}, token);
      expectStatus(reply, 200);
      assert.deepEqual(reply.body, { success: true });
    });
  }
  await t.step("without a body: 400, as every POST here (the original read none)", async () => {
    const reply = await system.call("POST", "/v1/auth/logout", { headers: JSON_HEADERS });
    expectError(reply, 400);
  });
  await t.step("the token still works: tokens are stateless", async () => {
    expectStatus(await system.call("GET", `/v1/users/${user.id}`, { token: user.token }), 200);
  });
});

// The original answered 400 "username or password missing" when either was absent or empty
// (`if not all([username, password])`), before it looked at anything else.
Deno.test("[catalog] POST /v1/auth/login without an email or a password is a 400, a wrong type a 422", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const required = "Cannot log in: email and password are required";
  const cases: [string, Record<string, unknown>, number, string, string][] = [
    ["no email", { password: user.password }, 400, "/email", required],
    ["an empty email", { email: "", password: user.password }, 400, "/email", required],
    ["an empty username", { username: "", password: user.password }, 400, "/username", required],
    ["no password", { email: user.email }, 400, "/password", required],
    ["an empty password", { email: user.email, password: "" }, 400, "/password", required],
    // Both there: the detail says what is wrong with the one pointed at, not that it is missing.
    [
      "an email that is a number",
      { email: 12345, password: user.password },
      422,
      "/email",
      "Cannot log in: email must be text",
    ],
    [
      "a username that is a number",
      { username: 12345, password: user.password },
      422,
      "/username",
      "Cannot log in: username must be text",
    ],
    [
      "a password that is a number",
      { email: user.email, password: 12345678 },
      422,
      "/password",
      "Cannot log in: password must be text",
    ],
    [
      "an email no account can have",
      { email: `${"a".repeat(321)}@example.com`, password: user.password },
      422,
      "/email",
      "Cannot log in: email is not valid",
    ],
  ];
  for (const [what, body, status, pointer, detail] of cases) {
    await t.step(`${what}: ${status} at ${pointer}`, async () => {
      const reply = await post(system, "/v1/auth/login", body);
      expectError(reply, status, { pointer });
      assert.equal(reply.body.errors[0].detail, detail);
    });
  }
});

// The original read `data.get('email', data.get('username'))`: an `email` member that is there
// is the one read, even null or empty, and `username` only when `email` is absent. Every path
// that logs in answers alike, and a body that is no object is a 4xx, never a 5xx.
Deno.test("[catalog] login reads email before username as the original, on every path", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const cases: [string, unknown, number, string?][] = [
    [
      "a null email beside a username",
      { email: null, username: user.email, password: user.password },
      400,
      "/email",
    ],
    [
      "an empty email beside a username",
      { email: "", username: user.email, password: user.password },
      400,
      "/email",
    ],
    ["an email beside an empty username", {
      email: user.email,
      username: "",
      password: user.password,
    }, 200],
    ["a null password", { email: user.email, password: null }, 400, "/password"],
    ["a null username alone", { username: null, password: user.password }, 400, "/username"],
    ["a JSON array", "[]", 400, ""],
    ["a JSON string", '"x"', 400, ""],
    ["JSON null", "null", 400, ""],
  ];
  for (const path of ["/v1/auth/login", "/v1/auth/session", "/auth/session"]) {
    for (const [what, body, status, pointer] of cases) {
      await t.step(`${path}, ${what}: ${status}`, async () => {
        const reply = await post(system, path, body);
        if (status === 200) expectStatus(reply, 200);
        else expectError(reply, status, pointer === undefined ? {} : { pointer });
      });
    }
  }
  await t.step("fresh-login, a null email beside a username: 400", async () => {
    const body = { email: null, username: user.email, password: user.password };
    const reply = await post(system, "/v1/auth/fresh-login", body, user.token);
    expectError(reply, 400, { pointer: "/email" });
  });
});
