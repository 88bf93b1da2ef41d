import assert from "node:assert/strict";
import {
  type CallResult,
  expectError,
  expectStatus,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";

const JSON_HEADERS = { "Content-Type": "application/json" };

function userBody(attributes: Record<string, unknown>) {
  return { data: { type: "user", attributes } };
}

function uniqueEmail(tag: string): string {
  return `${tag}-${crypto.randomUUID().slice(0, 8)}@example.test`;
}

/** No answer may carry a password or its hash, under any name. */
function assertNoPassword(result: CallResult, password?: string) {
  assert.doesNotMatch(result.text, /password/i, "a response mentions a password");
  assert.doesNotMatch(result.text, /pbkdf2/i, "a response carries a password hash");
  if (password) assert.ok(!result.text.includes(password), "a response carries the password");
}

async function login(system: TestSystem, path: string, body: unknown) {
  return await system.call("POST", path, { body, headers: JSON_HEADERS });
}

Deno.test("[catalog] POST /v1/users signs up and POST /v1/auth/login logs in", async (t) => {
  await using system = await startTestSystem();
  const email = uniqueEmail("Mixed.Case");
  const password = "correct horse battery";
  let userId = "";

  await t.step("sign-up answers 201 with Location and no password", async () => {
    const reply = await system.call("POST", "/v1/users", {
      body: userBody({ email, password, "first-name": "Ada", "last-name": "Lovelace" }),
    });
    expectStatus(reply, 201);
    userId = reply.body.data.id;
    assert.equal(typeof userId, "string");
    assert.equal(reply.body.data.type, "user");
    assert.equal(reply.headers.get("Location"), `/v1/users/${userId}`);
    assert.equal(reply.headers.get("Content-Type"), "application/vnd.api+json");
    assert.equal(reply.body.data.attributes["first-name"], "Ada");
    assert.equal(reply.body.data.attributes["is-admin"], false);
    assertNoPassword(reply, password);
    const [row] = await system.sql`select password_hash from users where id = ${userId}`;
    assert.match(row.password_hash, /^pbkdf2-sha256\$/);
    assert.ok(!row.password_hash.includes(password));
  });

  await t.step(
    "a password shorter than 8 characters is 422 at /data/attributes/password",
    async () => {
      const other = uniqueEmail("short");
      const reply = await system.call("POST", "/v1/users", {
        body: userBody({ email: other, password: "1234567" }),
      });
      expectError(reply, 422, { pointer: "/data/attributes/password" });
      assert.ok(!reply.text.includes("1234567"), "the error echoes the password");
      const rows = await system.sql`select 1 from users where email = ${other}`;
      assert.equal(rows.length, 0);
    },
  );

  await t.step("a duplicate email, in any case, is 409", async () => {
    for (const variant of [email, email.toLowerCase(), email.toUpperCase()]) {
      const reply = await system.call("POST", "/v1/users", {
        body: userBody({ email: variant, password: "another password" }),
      });
      expectError(reply, 409, {}, variant);
    }
    const [{ count }] = await system.sql`select count(*)::int as count from users
      where lower(email) = lower(${email})`;
    assert.equal(count, 1);
  });

  await t.step("login answers 200 with a token that works, on both paths", async () => {
    for (const path of ["/v1/auth/login", "/v1/auth/session"]) {
      const reply = await login(system, path, { email, password });
      expectStatus(reply, 200, path);
      assert.equal(typeof reply.body.access_token, "string");
      assertNoPassword(reply, password);
      const me = await system.call("GET", `/v1/users/${userId}`, {
        token: reply.body.access_token,
      });
      expectStatus(me, 200);
      assertNoPassword(me, password);
      const bearer = await system.call("GET", `/v1/users/${userId}`, {
        headers: { Authorization: `Bearer ${reply.body.access_token}` },
      });
      expectStatus(bearer, 200, "Bearer scheme");
    }
  });

  await t.step("sign-up cannot make an admin", async () => {
    const other = uniqueEmail("sneaky");
    const reply = await system.call("POST", "/v1/users", {
      body: userBody({
        email: other,
        password: "long enough",
        "is-admin": true,
        "is-super-admin": true,
      }),
    });
    if (reply.status === 201) {
      assert.equal(reply.body.data.attributes["is-admin"], false);
      assert.equal(reply.body.data.attributes["is-super-admin"], false);
    } else {
      expectError(reply, reply.status === 403 ? 403 : 422);
    }
    const rows = await system.sql`select 1 from users where email = ${other}
      and (is_admin or is_super_admin)`;
    assert.equal(rows.length, 0);
  });

  await t.step("a bad or foreign token is 401 even on public routes", async () => {
    const token = await system.login(email, password);
    const [header, payload] = token.split(".");
    for (
      const authorization of [
        "Basic dXNlcjpwYXNz",
        "JWT",
        "JWT not-a-token",
        `JWT ${header}.${payload}.forged`,
        `JWT ${token}x`,
      ]
    ) {
      expectError(
        await system.call("GET", "/v1/events", { headers: { Authorization: authorization } }),
        401,
        {},
        authorization,
      );
    }
  });

  await t.step("the frontend's login: /auth/session with a username", async () => {
    // What open-event-frontend posts (login-form.js): no version prefix, `username`.
    const body = { username: email, password, "remember-me": false, "include-in-response": false };
    const reply = await login(system, "/auth/session", body);
    expectStatus(reply, 200);
    assert.equal(typeof reply.body.access_token, "string");
    expectError(await login(system, "/auth/session", { username: email, password: "wrong" }), 401);
  });

  await t.step("login ignores the email's case", async () => {
    const reply = await login(system, "/v1/auth/login", { email: email.toUpperCase(), password });
    expectStatus(reply, 200);
  });

  // Found by a review: the original stripped the email before looking it up, and a login form
  // sends what was typed (a phone keyboard's autocompletion adds a space); here it was a 401.
  await t.step("login ignores spaces around the email, as the original", async () => {
    for (const typed of [`${email} `, `  ${email}`, `\t${email}\n`]) {
      expectStatus(await login(system, "/v1/auth/login", { email: typed, password }), 200);
      expectStatus(await login(system, "/auth/session", { username: typed, password }), 200);
    }
  });

  await t.step("login accepts a JSON:API content type too", async () => {
    const reply = await system.call("POST", "/v1/auth/login", { body: { email, password } });
    expectStatus(reply, 200);
  });

  await t.step("a wrong password or an unknown email is 401", async () => {
    expectError(await login(system, "/v1/auth/login", { email, password: "wrong password" }), 401);
    expectError(
      await login(system, "/v1/auth/session", { email, password: "wrong password" }),
      401,
    );
    expectError(
      await login(system, "/v1/auth/login", { email: uniqueEmail("nobody"), password }),
      401,
    );
  });

  await t.step("missing fields are 400 or 422, never 401 or 500", async () => {
    for (const body of [{}, { email }, { password }, { email: "", password: "" }, { email: 1 }]) {
      const reply = await login(system, "/v1/auth/login", body);
      assert.ok([400, 422].includes(reply.status), `${JSON.stringify(body)}: ${reply.status}`);
      expectError(reply, reply.status);
    }
  });

  await t.step("PATCH changes only the keys sent", async () => {
    const token = await system.login(email, password);
    const reply = await system.call("PATCH", `/v1/users/${userId}`, {
      token,
      body: { data: { type: "user", id: userId, attributes: { "last-name": "Byron" } } },
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["last-name"], "Byron");
    assert.equal(reply.body.data.attributes["first-name"], "Ada");
    assert.equal(reply.body.data.attributes.email, email);
    // The password still works: it was not touched.
    expectStatus(await login(system, "/v1/auth/login", { email, password }), 200);
  });

  await t.step("PATCH with the discount codes a client read: accepted, ignored", async () => {
    // open-event-frontend's user model has discountCodes without an inverse, which Ember sends
    // back on every save once loaded; the discounts service owns them (a 422 before).
    const token = await system.login(email, password);
    const codes = { data: [{ type: "discount-code", id: "1" }] };
    const reply = await system.call("PATCH", `/v1/users/${userId}`, {
      token,
      body: {
        data: {
          type: "user",
          id: userId,
          attributes: { "first-name": "Ada" },
          relationships: { "discount-codes": codes },
        },
      },
    });
    expectStatus(reply, 200);
    const ours = await system.call("PATCH", `/v1/users/${userId}`, {
      token,
      body: {
        data: { type: "user", id: userId, relationships: { "users-events-roles": { data: [] } } },
      },
    });
    expectError(ours, 422, { pointer: "/data/relationships/users-events-roles" });
  });
  await t.step("PATCH of the password changes the login and never echoes it", async () => {
    const token = await system.login(email, password);
    const newPassword = "a brand new password";
    const reply = await system.call("PATCH", `/v1/users/${userId}`, {
      token,
      body: { data: { type: "user", id: userId, attributes: { password: newPassword } } },
    });
    expectStatus(reply, 200);
    assertNoPassword(reply, newPassword);
    expectError(await login(system, "/v1/auth/login", { email, password }), 401);
    expectStatus(await login(system, "/v1/auth/login", { email, password: newPassword }), 200);
  });
});

Deno.test("[catalog] /v1/users/{id} is for the user themselves or an admin", async (t) => {
  await using system = await startTestSystem();
  const alice = await system.signUp();
  const bob = await system.signUp();
  const { admin } = system;
  const plainAdmin = await system.signUp();
  await system.sql`update users set is_admin = true where id = ${plainAdmin.id}`;

  await t.step("GET: self 200, another user 403, anonymous 401, admin 200", async () => {
    expectStatus(await system.call("GET", `/v1/users/${alice.id}`, { token: alice.token }), 200);
    expectError(await system.call("GET", `/v1/users/${alice.id}`, { token: bob.token }), 403);
    expectError(await system.call("GET", `/v1/users/${alice.id}`), 401);
    expectStatus(await system.call("GET", `/v1/users/${alice.id}`, { token: admin.token }), 200);
    expectStatus(
      await system.call("GET", `/v1/users/${alice.id}`, { token: plainAdmin.token }),
      200,
    );
  });

  await t.step("GET of an unknown user is 404 for an admin", async () => {
    expectError(await system.call("GET", "/v1/users/987654321", { token: admin.token }), 404);
  });

  await t.step("PATCH: another user 403 and nothing changes; self and admin 200", async () => {
    const body = (name: string) => ({
      data: { type: "user", id: alice.id, attributes: { "first-name": name } },
    });
    expectError(
      await system.call("PATCH", `/v1/users/${alice.id}`, { token: bob.token, body: body("Bob") }),
      403,
    );
    expectError(await system.call("PATCH", `/v1/users/${alice.id}`, { body: body("Anon") }), 401);
    const [row] = await system.sql`select first_name from users where id = ${alice.id}`;
    assert.equal(row.first_name, null);
    expectStatus(
      await system.call("PATCH", `/v1/users/${alice.id}`, {
        token: alice.token,
        body: body("Alice"),
      }),
      200,
    );
    const byAdmin = await system.call("PATCH", `/v1/users/${alice.id}`, {
      token: admin.token,
      body: body("Alicia"),
    });
    expectStatus(byAdmin, 200);
    assert.equal(byAdmin.body.data.attributes["first-name"], "Alicia");
  });

  await t.step("GET /v1/users: admins only", async () => {
    expectError(await system.call("GET", "/v1/users"), 401);
    expectError(await system.call("GET", "/v1/users", { token: alice.token }), 403);
    const list = await system.call("GET", "/v1/users", { token: admin.token });
    expectStatus(list, 200);
    assert.ok(list.body.meta.count >= 4);
    assertNoPassword(list);
    expectStatus(await system.call("GET", "/v1/users", { token: plainAdmin.token }), 200);
  });

  await t.step("is-admin and is-super-admin are changed by super admins only", async () => {
    // Every form validation reads as true, not only JSON's: a review made itself super admin
    // with "True" while only `true` was checked.
    const forms = [true, 1, "1", "true", "True", "TRUE", "t", "T"];
    const cases = ["is-admin", "is-super-admin"].flatMap((flag) =>
      forms.map((value): [string, unknown] => [flag, value])
    );
    for (const [flag, value] of cases) {
      const body = { data: { type: "user", id: bob.id, attributes: { [flag]: value } } };
      expectError(
        await system.call("PATCH", `/v1/users/${bob.id}`, { token: bob.token, body }),
        403,
        { pointer: `/data/attributes/${flag}` },
        `${flag} by self`,
      );
      expectError(
        await system.call("PATCH", `/v1/users/${bob.id}`, { token: plainAdmin.token, body }),
        403,
        {},
        `${flag} by a plain admin`,
      );
      const [row] = await system.sql`select is_admin, is_super_admin from users
        where id = ${bob.id}`;
      assert.deepEqual([row.is_admin, row.is_super_admin], [false, false]);
    }
    const reply = await system.call("PATCH", `/v1/users/${bob.id}`, {
      token: admin.token,
      body: { data: { type: "user", id: bob.id, attributes: { "is-admin": true } } },
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["is-admin"], true);
    assert.equal(reply.body.data.attributes["is-super-admin"], false);
    // Takes effect on the next request: bob now lists users.
    expectStatus(await system.call("GET", "/v1/users", { token: bob.token }), 200);
    expectStatus(
      await system.call("PATCH", `/v1/users/${bob.id}`, {
        token: admin.token,
        body: { data: { type: "user", id: bob.id, attributes: { "is-admin": false } } },
      }),
      200,
    );
    expectError(await system.call("GET", "/v1/users", { token: bob.token }), 403);
  });

  await t.step("PATCH to another user's email is 409", async () => {
    const reply = await system.call("PATCH", `/v1/users/${alice.id}`, {
      token: alice.token,
      body: {
        data: { type: "user", id: alice.id, attributes: { email: bob.email.toUpperCase() } },
      },
    });
    expectError(reply, 409);
  });

  await t.step("DELETE: another user 403, self 200; the token then stops working", async () => {
    const carol = await system.signUp();
    expectError(await system.call("DELETE", `/v1/users/${carol.id}`, { token: alice.token }), 403);
    expectError(await system.call("DELETE", `/v1/users/${carol.id}`), 401);
    const reply = await system.call("DELETE", `/v1/users/${carol.id}`, { token: carol.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.meta, { message: "Object successfully deleted" });
    expectError(await system.call("GET", `/v1/users/${carol.id}`, { token: carol.token }), 401);
    expectError(await system.call("GET", "/v1/events", { token: carol.token }), 401);
    expectError(
      await system.call("POST", "/v1/events", {
        token: carol.token,
        body: {
          data: {
            type: "event",
            attributes: {
              name: "Ghost",
              "starts-at": "2031-01-01T10:00:00Z",
              "ends-at": "2031-01-01T11:00:00Z",
            },
          },
        },
      }),
      401,
    );
    expectError(
      await login(system, "/v1/auth/login", { email: carol.email, password: carol.password }),
      401,
    );
  });

  await t.step("DELETE by an admin; ?permanent=true is for admins only", async () => {
    const dave = await system.signUp();
    expectError(
      await system.call("DELETE", `/v1/users/${dave.id}?permanent=true`, { token: dave.token }),
      403,
    );
    assert.equal((await system.sql`select 1 from users where id = ${dave.id}`).length, 1);
    expectStatus(
      await system.call("DELETE", `/v1/users/${dave.id}?permanent=true`, { token: admin.token }),
      200,
    );
    assert.equal((await system.sql`select 1 from users where id = ${dave.id}`).length, 0);
    expectError(await system.call("GET", "/v1/events", { token: dave.token }), 401);
  });

  await t.step("a soft-deleted user's email can sign up again", async () => {
    const erin = await system.signUp();
    expectStatus(
      await system.call("DELETE", `/v1/users/${erin.id}`, { token: erin.token }),
      200,
    );
    expectStatus(
      await system.call("POST", "/v1/users", {
        body: userBody({ email: erin.email, password: "a fresh password" }),
      }),
      201,
    );
  });
});

Deno.test("[catalog] super admins are guarded: only super admins change them, one always remains", async (t) => {
  await using system = await startTestSystem();
  const superAdmin = system.admin;
  const admin = await system.signUp();
  expectStatus(
    await system.call("PATCH", `/v1/users/${admin.id}`, {
      token: superAdmin.token,
      body: { data: { type: "user", id: admin.id, attributes: { "is-admin": true } } },
    }),
    200,
  );

  await t.step("a plain admin cannot change a super admin's password or delete them", async () => {
    const patch = await system.call("PATCH", `/v1/users/${superAdmin.id}`, {
      token: admin.token,
      body: { data: { type: "user", id: superAdmin.id, attributes: { password: "hijacked123" } } },
    });
    expectError(patch, 403);
    expectError(
      await system.call("DELETE", `/v1/users/${superAdmin.id}`, { token: admin.token }),
      403,
    );
    // The old password still works.
    assert.ok(await system.login(superAdmin.email, superAdmin.password));
  });

  await t.step("the last super admin can neither delete nor demote themselves (409)", async () => {
    expectError(
      await system.call("DELETE", `/v1/users/${superAdmin.id}`, { token: superAdmin.token }),
      409,
    );
    const demote = await system.call("PATCH", `/v1/users/${superAdmin.id}`, {
      token: superAdmin.token,
      body: {
        data: { type: "user", id: superAdmin.id, attributes: { "is-super-admin": false } },
      },
    });
    expectError(demote, 409);
    const [row] = await system.sql`select is_super_admin, deleted_at from users
      where id = ${superAdmin.id}`;
    assert.deepEqual(row, { is_super_admin: true, deleted_at: null });
  });

  await t.step("with a second super admin, the first may step down", async () => {
    expectStatus(
      await system.call("PATCH", `/v1/users/${admin.id}`, {
        token: superAdmin.token,
        body: { data: { type: "user", id: admin.id, attributes: { "is-super-admin": true } } },
      }),
      200,
    );
    const demote = await system.call("PATCH", `/v1/users/${superAdmin.id}`, {
      token: superAdmin.token,
      body: {
        data: { type: "user", id: superAdmin.id, attributes: { "is-super-admin": false } },
      },
    });
    expectStatus(demote, 200);
  });

  await t.step("sign-up with admin flags is refused with 403 and a pointer", async () => {
    const cases: [string, unknown][] = [["is-admin", true], ["is-admin", "true"], [
      "is-super-admin",
      "1",
    ]];
    for (const [flag, value] of cases) {
      const reply = await system.call("POST", "/v1/users", {
        body: {
          data: {
            type: "user",
            attributes: { email: "flags@example.test", password: "long enough", [flag]: value },
          },
        },
      });
      expectError(reply, 403, { pointer: `/data/attributes/${flag}` }, `${flag}: ${value}`);
    }
    const [row] = await system.sql`select count(*)::int as n from users
      where email = 'flags@example.test'`;
    assert.equal(row.n, 0);
  });
});

Deno.test("[catalog] clients may send the admin flags back unchanged; the last owner cannot leave", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();

  await t.step("sign-up and PATCH with unchanged false flags are accepted", async () => {
    const signUp = await system.call("POST", "/v1/users", {
      body: {
        data: {
          type: "user",
          attributes: {
            email: "ember@example.test",
            password: "long enough",
            "is-admin": false,
            "is-super-admin": false,
          },
        },
      },
    });
    expectStatus(signUp, 201);
    const patch = await system.call("PATCH", `/v1/users/${user.id}`, {
      token: user.token,
      body: {
        data: {
          type: "user",
          id: user.id,
          attributes: { "first-name": "Ember", "is-admin": false, "is-super-admin": false },
        },
      },
    });
    expectStatus(patch, 200);
    assert.equal(patch.body.data.attributes["first-name"], "Ember");
  });

  await t.step("a flag that would change is still 403, an invalid one 422", async () => {
    const raise = await system.call("PATCH", `/v1/users/${user.id}`, {
      token: user.token,
      body: { data: { type: "user", id: user.id, attributes: { "is-admin": true } } },
    });
    expectError(raise, 403, { pointer: "/data/attributes/is-admin" });
    const invalid = await system.call("PATCH", `/v1/users/${user.id}`, {
      token: user.token,
      body: { data: { type: "user", id: user.id, attributes: { "is-admin": null } } },
    });
    expectError(invalid, 422);
  });

  await t.step("the only owner of an event cannot delete themselves (409)", async () => {
    const event = await system.createEvent(user.token);
    const reply = await system.call("DELETE", `/v1/users/${user.id}`, { token: user.token });
    expectError(reply, 409);
    assert.match(reply.body.errors[0].detail, new RegExp(`event ${event.id}`));
    const [row] = await system.sql`select deleted_at from users where id = ${user.id}`;
    assert.equal(row.deleted_at, null);
  });
});

Deno.test("[catalog] a PATCH of a trashed user that changes nothing is a 200 with no fact", async () => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const path = `/v1/users/${user.id}`;
  const admin = { token: system.admin.token };
  expectStatus(await system.call("DELETE", path, admin), 200);
  const before = (await system.readFacts()).length;
  const body = { data: { type: "user", id: user.id, attributes: {} } };
  // It read the trashed row as missing, and the fact without data was refused: a 500.
  expectStatus(await system.call("PATCH", `${path}?get_trashed=true`, { ...admin, body }), 200);
  assert.equal((await system.readFacts()).length, before);
});

Deno.test("[catalog] super admins demoting each other at once: one wins, never a 500", async (t) => {
  await using system = await startTestSystem();
  const first = system.admin;
  const others = [await system.signUp(), await system.signUp()];
  const flag = (token: string, id: string, value: boolean) =>
    system.call("PATCH", `/v1/users/${id}`, {
      token,
      body: { data: { type: "user", id, attributes: { "is-super-admin": value } } },
    });
  const superAdmins = async () =>
    (await system.sql`select id from users where is_super_admin and deleted_at is null`).length;

  await t.step("two super admins, each demoting the other: one 200, one refused", async () => {
    const [second] = others;
    for (let round = 0; round < 4; round++) {
      expectStatus(await flag(first.token, second.id, true), 200);
      const statuses = await Promise.all([
        flag(first.token, second.id, false),
        flag(second.token, first.id, false),
      ]);
      // The loser is refused: 409 (the last super admin), or 403 when it was demoted already.
      const [won, lost] = statuses.map((r) => r.status).sort();
      assert.equal(won, 200, `round ${round}`);
      assert.ok(lost === 409 || lost === 403, `round ${round}: ${lost}`);
      assert.equal(await superAdmins(), 1);
      // Whoever is left makes the other one again.
      if (statuses[1].status === 200) expectStatus(await flag(second.token, first.id, true), 200);
    }
  });
  await t.step("one super admin demoting two others at once: both 200", async () => {
    for (let round = 0; round < 4; round++) {
      for (const other of others) expectStatus(await flag(first.token, other.id, true), 200);
      const statuses = await Promise.all(others.map((o) => flag(first.token, o.id, false)));
      assert.deepEqual(statuses.map((r) => r.status), [200, 200], `round ${round}`);
    }
  });
});

Deno.test("[catalog] a 409 for a taken email or topic name points at the member in conflict", async () => {
  await using system = await startTestSystem();
  const [alice, bob] = [await system.signUp(), await system.signUp()];
  const admin = system.admin.token;
  const signUp = await system.call("POST", "/v1/users", {
    body: userBody({ email: alice.email.toUpperCase(), password: "another password" }),
  });
  // As the original answered it (ConflictException with /data/attributes/email).
  expectError(signUp, 409, { pointer: "/data/attributes/email" }, "sign-up");
  const moved = await system.call("PATCH", `/v1/users/${bob.id}`, {
    token: bob.token,
    body: { data: { type: "user", id: bob.id, attributes: { email: alice.email } } },
  });
  expectError(moved, 409, { pointer: "/data/attributes/email" }, "PATCH");
  const topic = await system.createTopic("Science");
  const again = await system.call("POST", "/v1/event-topics", {
    token: admin,
    body: { data: { type: "event-topic", attributes: { name: "science" } } },
  });
  expectError(again, 409, { pointer: "/data/attributes/name" }, "topic");
  await system.createSubTopic(topic, "Physics");
  const sub = await system.call("POST", "/v1/event-sub-topics", {
    token: admin,
    body: {
      data: {
        type: "event-sub-topic",
        attributes: { name: "Physics" },
        relationships: { "event-topic": { data: { type: "event-topic", id: topic } } },
      },
    },
  });
  expectError(sub, 409, { pointer: "/data/attributes/name" }, "sub-topic");
});

Deno.test("[catalog] POST /v1/users takes every address the original and its web client take", async (t) => {
  await using system = await startTestSystem();
  const tag = crypto.randomUUID().slice(0, 8);
  // RFC 5322 characters of a local part and IDN (punycode or Unicode) domains: marshmallow's
  // Email took them all, as does open-event-frontend's form; a 422 here until 2026-12-04.
  const taken = [
    `jane&john-${tag}@example.com`,
    `sales=eu-${tag}@example.com`,
    `a!b#c$d%e*f/g?h^i\`j{k|l}m~n-${tag}@example.com`,
    `ivan-${tag}@example.xn--p1ai`,
    `juergen-${tag}@bücher.de`,
    `host-${tag}@1and1.co`,
  ];
  for (const email of taken) {
    await t.step(`${email}: 201, and it logs in`, async () => {
      const reply = await system.call("POST", "/v1/users", {
        body: userBody({ email, password: "long enough" }),
      });
      expectStatus(reply, 201, email);
      assert.equal(reply.body.data.attributes.email, email);
      await system.login(email, "long enough");
    });
  }
  const refused = [
    "plain",
    "@example.com",
    "a@",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a b@example.com",
    "a@b@example.com",
    "a@example",
    "a@example.c",
    "a@-example.com",
    "a@example-.com",
    "a@exa_mple.com",
    "a@example..com",
    "a@bü.co/x",
    `${"a".repeat(60)}@${"b".repeat(260)}.com`,
  ];
  await t.step("what is no address stays a 422 at /data/attributes/email", async () => {
    for (const email of refused) {
      const reply = await system.call("POST", "/v1/users", {
        body: userBody({ email, password: "long enough" }),
      });
      expectError(reply, 422, { pointer: "/data/attributes/email" }, email);
    }
  });
});

Deno.test("[catalog] POST /v1/auth/login names the member it lacks; an overlong password is a 401", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();

  await t.step("a missing member is a 400, a malformed one a 422, pointing at it", async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ password: "whatever1" }, 400, "/email"],
      [{ email: 12345, password: "whatever1" }, 422, "/email"],
      [{ email: user.email }, 400, "/password"],
      [{ email: user.email, password: 5 }, 422, "/password"],
    ];
    for (const [body, status, pointer] of cases) {
      const reply = await login(system, "/v1/auth/login", body);
      expectError(reply, status, { pointer }, JSON.stringify(body));
    }
  });

  await t.step(
    "a password longer than any account's is wrong credentials, not missing",
    async () => {
      // Sign-up takes at most 1024 characters: no account has a longer one (the original: 401).
      for (const email of [user.email, "nobody@example.com"]) {
        const reply = await login(system, "/v1/auth/login", { email, password: "x".repeat(1025) });
        expectError(reply, 401, {}, email);
      }
    },
  );
});

/** The body of open-event-frontend's admin "Restore" (`admin/users/list.js` `restoreUser`). */
function restoreBody(id: string) {
  return { data: { type: "user", id, attributes: { "deleted-at": null } } };
}

Deno.test("[catalog] an admin restores a soft-deleted user with deleted-at null", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const [other, plainAdmin] = [await system.signUp(), await system.signUp()];
  await system.sql`update users set is_admin = true where id = ${plainAdmin.id}`;
  const path = `/v1/users/${user.id}`;
  // An event they own with `other`: their deletion makes `other` its owner.
  const event = await system.createEvent(user.token);
  await system.grantRole(user.token, { userId: other.id, eventId: event.id, role: "owner" });
  expectStatus(await system.call("DELETE", path, { token: system.admin.token }), 200);
  const ownerOf = async () =>
    String((await system.sql`select owner_id from events where id = ${event.id}`)[0].owner_id);
  assert.equal(await ownerOf(), other.id);
  const trashed = async () =>
    (await system.sql`select deleted_at from users where id = ${user.id}`)[0].deleted_at !== null;

  await t.step(
    "a non-admin's deleted-at is ignored: 403 for another, nothing for themselves",
    async () => {
      for (const query of ["", "?get_trashed=true"]) {
        expectError(
          await system.call("PATCH", `${path}${query}`, {
            token: other.token,
            body: restoreBody(user.id),
          }),
          403,
        );
      }
      assert.ok(await trashed());
      const before = (await system.readFacts()).length;
      for (const deletedAt of [null, "2020-01-01T00:00:00Z"]) {
        const own = await system.call("PATCH", `/v1/users/${other.id}?get_trashed=true`, {
          token: other.token,
          body: { data: { type: "user", id: other.id, attributes: { "deleted-at": deletedAt } } },
        });
        expectStatus(own, 200);
        assert.equal(own.body.data.attributes["deleted-at"], null);
      }
      assert.equal((await system.readFacts()).length, before, "a fact for a change of nothing");
    },
  );
  await t.step("an admin reaches the trashed user only with ?get_trashed=true", async () => {
    expectError(
      await system.call("PATCH", path, { token: plainAdmin.token, body: restoreBody(user.id) }),
      404,
    );
    assert.ok(await trashed());
  });
  await t.step("a deleted-at other than null restores nothing", async () => {
    const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
      token: plainAdmin.token,
      body: { data: { type: "user", id: user.id, attributes: { "deleted-at": "2020-01-01" } } },
    });
    expectStatus(reply, 200);
    assert.notEqual(reply.body.data.attributes["deleted-at"], null);
    assert.ok(await trashed());
  });
  await t.step("the admin's restore: 200, live again, one catalog.user.updated", async () => {
    // As Ember saves the record it read: every writable attribute back, deleted-at now null.
    const read = await system.call("GET", `${path}?get_trashed=true`, { token: plainAdmin.token });
    expectStatus(read, 200);
    const { "is-super-admin": _, "created-at": _c, "last-accessed-at": _l, ...attributes } =
      read.body.data.attributes;
    const before = (await system.readFacts()).length;
    const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
      token: plainAdmin.token,
      body: {
        data: { type: "user", id: user.id, attributes: { ...attributes, "deleted-at": null } },
      },
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["deleted-at"], null);
    assert.ok(!await trashed());
    expectStatus(await system.call("GET", path, { token: plainAdmin.token }), 200);
    const facts = (await system.readFacts()).slice(before);
    assert.deepEqual(facts.map((fact) => fact.type), ["catalog.user.updated"]);
    assert.equal(facts[0].data.id, user.id);
    assert.equal(facts[0].data["deleted-at"], null);
    // What the deletion took along stays as it left it; their grant, kept as history, is live.
    assert.equal(await ownerOf(), other.id);
    const grants = await system.sql`select role_name from users_events_roles
      where user_id = ${user.id} and event_id = ${event.id}`;
    assert.deepEqual(grants.map((g) => g.role_name), ["owner"]);
  });
  await t.step("a token from before the deletion stays dead; the password logs in", async () => {
    expectError(await system.call("GET", path, { token: user.token }), 401);
    const token = await system.login(user.email, user.password);
    expectStatus(await system.call("GET", path, { token }), 200);
  });
  await t.step("sent again on the live user, deleted-at: null changes nothing", async () => {
    const before = (await system.readFacts()).length;
    expectStatus(
      await system.call("PATCH", `${path}?get_trashed=true`, {
        token: plainAdmin.token,
        body: restoreBody(user.id),
      }),
      200,
    );
    assert.equal((await system.readFacts()).length, before);
  });
});

Deno.test("[catalog] restoring a user whose email a live user took meanwhile is a 409, nothing changed", async () => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const path = `/v1/users/${user.id}`;
  const admin = system.admin.token;
  expectStatus(await system.call("DELETE", path, { token: admin }), 200);
  // Case aside, the same address: the live account holds it.
  await system.signUp(user.email.toUpperCase());
  const row = async () => (await system.sql`select * from users where id = ${user.id}`)[0];
  const [stored, facts] = [await row(), (await system.readFacts()).length];
  const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
    token: admin,
    body: restoreBody(user.id),
  });
  expectError(reply, 409, { pointer: "/data/attributes/email" });
  assert.match(reply.body.errors[0].detail, /^Cannot restore user: /);
  assert.deepEqual(await row(), stored);
  assert.equal((await system.readFacts()).length, facts);
});
