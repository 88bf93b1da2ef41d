import assert from "node:assert/strict";
import { expectStatus, startTestSystem, type TestSystem } from "@testing/system.ts";
import { recordLogin } from "./store/users.ts";

const YEAR_MS = 365 * 24 * 3600 * 1000;

/** The query open-event-frontend's admin users page sends for a tab (routes/admin/users/list.js). */
function usersPage(tab: "active" | "inactive", sort?: string): string {
  const yearAgo = new Date(Date.now() - YEAR_MS).toISOString();
  const live = { name: "deleted-at", op: "eq", val: null };
  const filter = tab === "active"
    ? [{ and: [live, { name: "last-accessed-at", op: "ge", val: yearAgo }] }]
    : [{
      and: [{
        or: [
          { name: "last-accessed-at", op: "eq", val: null },
          { name: "last-accessed-at", op: "lt", val: yearAgo },
        ],
      }, live],
    }];
  const query = new URLSearchParams({
    include: "events",
    get_trashed: "true",
    filter: JSON.stringify(filter),
    "page[size]": "10",
    "page[number]": "1",
  });
  if (sort) query.set("sort", sort);
  return `/v1/users?${query}`;
}

async function lastAccessed(system: TestSystem, id: string, token: string) {
  const reply = await system.call("GET", `/v1/users/${id}`, { token });
  expectStatus(reply, 200);
  return reply.body.data.attributes["last-accessed-at"] as string | null;
}

Deno.test("[catalog] a login stamps the user's last-accessed-at, which only they and admins see", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();

  await t.step("the login of the sign-up stamped it", async () => {
    const stamp = await lastAccessed(system, user.id, user.token);
    assert.ok(stamp && Math.abs(Date.parse(stamp) - Date.now()) < 60_000, `stamped at ${stamp}`);
    assert.equal(await lastAccessed(system, user.id, system.admin.token), stamp);
  });

  await t.step("a fresh login stamps it again; a PATCH cannot set it", async () => {
    await system.sql`update users set last_accessed_at = '2020-01-01T00:00:00Z'
      where id = ${user.id}`;
    const fresh = await system.call("POST", "/v1/auth/fresh-login", {
      token: user.token,
      body: { email: user.email, password: user.password },
      headers: { "Content-Type": "application/json" },
    });
    expectStatus(fresh, 200);
    const stamp = await lastAccessed(system, user.id, user.token);
    assert.ok(Date.parse(stamp!) > Date.parse("2020-01-01T00:00:00Z"), `stamped at ${stamp}`);
    const patched = await system.call("PATCH", `/v1/users/${user.id}`, {
      token: user.token,
      body: {
        data: {
          type: "user",
          id: user.id,
          attributes: { "first-name": "Read Back", "last-accessed-at": "2000-01-01T00:00:00Z" },
        },
      },
    });
    expectStatus(patched, 200);
    assert.equal(patched.body.data.attributes["last-accessed-at"], stamp);
  });

  await t.step("a login checked before a password change is not stamped", async () => {
    const [row] = await system.sql`select token_version, last_accessed_at from users
      where id = ${user.id}`;
    const stale = { id: user.id, token_version: row.token_version - 1 };
    assert.equal(await recordLogin(system.sql, stale), undefined);
    const [after] = await system.sql`select last_accessed_at from users where id = ${user.id}`;
    assert.deepEqual(after.last_accessed_at, row.last_accessed_at);
    const current = { id: user.id, token_version: row.token_version };
    assert.ok(await recordLogin(system.sql, current));
  });

  await t.step("others never see it", async () => {
    const event = await system.createEvent(user.token, { attributes: { state: "published" } });
    const page = await system.call("GET", `/v1/events/${event.id}?include=owner`);
    expectStatus(page, 200);
    const owner = page.body.included.find((r: { type: string }) => r.type === "user");
    assert.equal(owner.id, user.id);
    assert.ok(!("last-accessed-at" in owner.attributes), JSON.stringify(owner.attributes));
    const stranger = await system.signUp();
    const other = await system.call("GET", `/v1/users/${user.id}`, { token: stranger.token });
    assert.ok(other.status === 403 || other.status === 404, `status ${other.status}`);
    assert.ok(!other.text.includes("last-accessed-at"));
  });
});

Deno.test("[catalog] the admin users page's Active and Inactive tabs and its sorts answer", async (t) => {
  await using system = await startTestSystem();
  const recent = await system.signUp();
  const longAgo = await system.signUp();
  const never = await system.signUp();
  const deleted = await system.signUp();
  await system.sql`update users set last_accessed_at = now() - interval '2 years'
    where id = ${longAgo.id}`;
  await system.sql`update users set last_accessed_at = null where id = ${never.id}`;
  expectStatus(
    await system.call("DELETE", `/v1/users/${deleted.id}`, { token: deleted.token }),
    200,
  );
  const ids = async (path: string) => {
    const reply = await system.call("GET", path, { token: system.admin.token });
    expectStatus(reply, 200);
    return reply.body.data.map((user: { id: string }) => user.id) as string[];
  };

  await t.step("Active: live users who logged in within a year, latest first", async () => {
    const active = await ids(usersPage("active", "-last-accessed-at"));
    assert.ok(active.includes(recent.id));
    for (const id of [longAgo.id, never.id, deleted.id]) assert.ok(!active.includes(id), id);
  });

  await t.step("Inactive: live users who never logged in or not within a year", async () => {
    const inactive = await ids(usersPage("inactive", "last-accessed-at"));
    // Ascending puts the oldest first and, as Postgres orders them, those never seen last.
    assert.deepEqual(inactive, [longAgo.id, never.id]);
  });

  await t.step("sorting on is-verified (always true) keeps the page whole", async () => {
    const all = await ids("/v1/users?sort=-is-verified&page[size]=0");
    const byId = await ids("/v1/users?page[size]=0");
    assert.deepEqual([...all].sort(), [...byId].sort());
    assert.deepEqual(
      await ids(`/v1/users?filter=${
        JSON.stringify([
          { name: "is-verified", op: "eq", val: false },
        ])
      }`),
      [],
    );
  });
});
