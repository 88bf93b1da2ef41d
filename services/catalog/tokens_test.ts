import assert from "node:assert/strict";
import { UnauthorizedError } from "@shared/errors.ts";
import { createLogger } from "@shared/log.ts";
import { catalog, catalogInternal } from "@shared/subjects.ts";
import { eventually } from "@testing/eventually.ts";
import {
  actorOf,
  expectError,
  expectStatus,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";
import { startDiscountsSystem } from "../discounts/_test_utils.ts";
import { startAuditOn } from "../audit/_test_utils.ts";
import { ensureFirstAdmin } from "./admin.ts";

const quiet = createLogger("catalog-test", "error");
const eventAttributes = {
  name: "Keyed",
  "starts-at": "2030-01-01T10:00:00Z",
  "ends-at": "2030-01-01T12:00:00Z",
};

/** What a token gets from the catalog (a user's own page, an event read in one statement) and audit. */
async function statuses(system: TestSystem, token: string, user: string, event: string) {
  const [own, read, activities] = await Promise.all([
    system.call("GET", `/v1/users/${user}`, { token }),
    system.call("GET", `/v1/events/${event}`, { token }),
    system.call("GET", "/v1/activities", { token }),
  ]);
  return { own: own.status, event: read.status, activities: activities.status };
}

function passwordBody(id: string, password: string) {
  return { data: { type: "user", id, attributes: { password } } };
}

/** Starts with ADMIN_EMAIL = `email`, as an operator's `start` does. */
function startAs(system: TestSystem, email: string, password: string) {
  return ensureFirstAdmin({
    sql: system.sql,
    relay: system.catalog.relay,
    config: { ...system.config, adminEmail: email, adminPassword: password },
    log: quiet,
  });
}

async function tokenVersion(system: TestSystem, id: string): Promise<number> {
  const [row] = await system.sql`select token_version from users where id = ${id}`;
  return row.token_version;
}

Deno.test("[catalog] an account promoted to super admin at start keeps none of its earlier tokens", async (t) => {
  await using system = await startTestSystem();
  const audit = await startAuditOn(system.bus, system.databaseUrl);
  system.defer(() => audit.stop());
  const { id: event } = await system.createEvent(system.admin.token, {
    attributes: { state: "published" },
  });
  const frank = await system.signUp();
  const operatorPassword = "the operator's own password";
  // Audit keeps the catalog's answer for frank's token.
  assert.deepEqual(await statuses(system, frank.token, frank.id, event), {
    own: 200,
    event: 200,
    activities: 403,
  });
  await startAs(system, frank.email, operatorPassword);

  await t.step("the account is promoted in place: same id", async () => {
    const [row] = await system.sql`select id, is_super_admin from users
      where email = ${frank.email}`;
    assert.equal(String(row.id), frank.id);
    assert.equal(row.is_super_admin, true);
  });
  await t.step("frank's old token is refused with 401 everywhere", async () => {
    await eventually(
      async () => (await statuses(system, frank.token, frank.id, event)).activities === 401,
      2_000,
      "audit to drop the kept answer",
    );
    assert.deepEqual(await statuses(system, frank.token, frank.id, event), {
      own: 401,
      event: 401,
      activities: 401,
    });
    const patch = await system.call("PATCH", `/v1/users/${frank.id}`, {
      token: frank.token,
      body: passwordBody(frank.id, "frank takes it back"),
    });
    assert.equal(patch.status, 401);
  });
  await t.step(
    "the operator's password gives a token that works, and the old one stays dead",
    async () => {
      const token = await system.login(frank.email, operatorPassword);
      assert.deepEqual(await statuses(system, token, frank.id, event), {
        own: 200,
        event: 200,
        activities: 200,
      });
      // Audit now keeps the fresh token's answer: it must not serve the stale one.
      assert.equal((await statuses(system, frank.token, frank.id, event)).activities, 401);
      await assert.rejects(
        system.bus.request(catalogInternal.access, { actor: actorOf(frank) }),
        UnauthorizedError,
      );
    },
  );
  await t.step("a start with the same admin and password logs nobody out", async () => {
    const token = await system.login(frank.email, operatorPassword);
    const version = await tokenVersion(system, frank.id);
    await startAs(system, frank.email, operatorPassword);
    assert.equal(await tokenVersion(system, frank.id), version);
    assert.equal((await statuses(system, token, frank.id, event)).activities, 200);
    await startAs(system, frank.email, "another password");
    assert.equal(await tokenVersion(system, frank.id), version + 1);
    assert.equal((await statuses(system, token, frank.id, event)).own, 401);
  });
});

Deno.test("[catalog] PATCH of a password ends every token issued before it", async (t) => {
  await using system = await startTestSystem();
  const audit = await startAuditOn(system.bus, system.databaseUrl);
  system.defer(() => audit.stop());
  const { id: event } = await system.createEvent(system.admin.token, {
    attributes: { state: "published" },
  });
  const user = await system.signUp();
  const second = await system.login(user.email, user.password);
  const made = await system.call("PATCH", `/v1/users/${user.id}`, {
    token: system.admin.token,
    body: { data: { type: "user", id: user.id, attributes: { "is-admin": true } } },
  });
  assert.equal(made.status, 200);
  const everything = { own: 200, event: 200, activities: 200 };
  const nothing = { own: 401, event: 401, activities: 401 };
  assert.deepEqual(await statuses(system, user.token, user.id, event), everything);

  let fresh = "";
  await t.step("through the gateway: every earlier token is 401 at once", async () => {
    const patch = await system.call("PATCH", `/v1/users/${user.id}`, {
      token: user.token,
      body: passwordBody(user.id, "a brand new password"),
    });
    assert.equal(patch.status, 200);
    assert.deepEqual(await statuses(system, user.token, user.id, event), nothing);
    assert.deepEqual(await statuses(system, second, user.id, event), nothing);
    fresh = await system.login(user.email, "a brand new password");
    assert.deepEqual(await statuses(system, fresh, user.id, event), everything);
    // The fresh token's answer is kept by audit now; the stale token still gets none of it.
    assert.deepEqual(await statuses(system, user.token, user.id, event), nothing);
    const login = await system.call("POST", "/v1/auth/login", {
      body: { email: user.email, password: user.password },
      headers: { "Content-Type": "application/json" },
    });
    assert.equal(login.status, 401);
  });
  await t.step("behind the gateway: once the fact arrives", async () => {
    const reply = await system.bus.forward(catalog.users.update, {
      actor: actorOf(system.admin),
      params: { id: user.id },
      path: `/v1/users/${user.id}`,
      query: {},
      body: passwordBody(user.id, "set by the admin"),
      requestId: crypto.randomUUID(),
    });
    assert.equal(reply.status, 200);
    await eventually(
      async () => (await statuses(system, fresh, user.id, event)).activities === 401,
      2_000,
      "audit to drop the kept answer",
    );
    assert.deepEqual(await statuses(system, fresh, user.id, event), nothing);
  });
});

Deno.test("[catalog] a keyed write repeated with a token that no longer counts is a 401, not a replay", async () => {
  await using system = await startDiscountsSystem();
  const user = await system.signUp();
  const keyed = (token: string, key: string) => ({ token, headers: { "Idempotency-Key": key } });
  const newEvent = { data: { type: "event", attributes: eventAttributes } };
  const created = await system.call("POST", "/v1/events", {
    ...keyed(user.token, "event-1"),
    body: newEvent,
  });
  expectStatus(created, 201);
  const eventId = created.body.data.id;
  const code = {
    data: {
      type: "discount-code",
      attributes: { code: "KEYED", value: 5, type: "percent", "used-for": "ticket" },
      relationships: { event: { data: { type: "event", id: eventId } } },
    },
  };
  expectStatus(
    await system.call("POST", "/v1/discount-codes", { ...keyed(user.token, "code-1"), body: code }),
    201,
  );
  const changed = await system.call("PATCH", `/v1/users/${user.id}`, {
    token: user.token,
    body: passwordBody(user.id, "a-new-password-123"),
  });
  expectStatus(changed, 200);
  // The stored answers were this user's, but the token is dead: 401 in the catalog and discounts.
  expectError(
    await system.call("POST", "/v1/events", { ...keyed(user.token, "event-1"), body: newEvent }),
    401,
  );
  expectError(
    await system.call("POST", "/v1/discount-codes", { ...keyed(user.token, "code-1"), body: code }),
    401,
  );
  // The user's new token still gets the stored answer (the same request, the same key).
  const fresh = await system.login(user.email, "a-new-password-123");
  const replayed = await system.call("POST", "/v1/events", {
    ...keyed(fresh, "event-1"),
    body: newEvent,
  });
  expectStatus(replayed, 201);
  assert.equal(replayed.body.data.id, eventId);
});

// A catalog restored from a backup while the facts that would move its id sequence past are gone
// (README, "Backups and restores") hands an account's id out again. Until 2026-12-06 every account
// started at token version 0, and the lost account's token signed in as the new one.
Deno.test("[catalog] a lost account's token does not sign in as a new account given its id", async () => {
  await using system = await startTestSystem();
  const lost = await system.signUp();
  // The restore: the account gone, and the sequence back to before it.
  await system.sql`delete from users where id = ${lost.id}`;
  await system.sql`select setval(pg_get_serial_sequence('users', 'id'), ${Number(lost.id) - 1})`;
  const next = await system.signUp();
  assert.equal(next.id, lost.id, "the id was handed out again");
  expectStatus(await system.call("GET", `/v1/users/${next.id}`, { token: lost.token }), 401);
  expectStatus(await system.call("GET", `/v1/users/${next.id}`, { token: next.token }), 200);
});
