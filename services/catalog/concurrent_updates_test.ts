/**
 * Two PATCHes of one row at once: the last fact about the row must say what the API shows. The
 * row is held locked from here, so both wait, and the first one in line changes the value while
 * the second writes the old value back: a second PATCH that compared its result with a copy read
 * before the first committed found "nothing changed" and announced nothing.
 */
import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { expectStatus, startTestSystem, type TestSystem } from "@testing/system.ts";

interface Case {
  type: string;
  table: string;
  attribute: string;
  /** Makes the row; returns its id and the path of the resource. */
  make: (system: TestSystem) => Promise<{ id: string; path: string; token: string }>;
  values: [unknown, unknown];
}

const CASES: Case[] = [
  {
    type: "event",
    table: "events",
    attribute: "name",
    values: ["Changed", "Original"],
    make: async (system) => {
      const owner = await system.signUp();
      const event = await system.createEvent(owner.token, { attributes: { name: "Original" } });
      return { id: event.id, path: `/v1/events/${event.id}`, token: owner.token };
    },
  },
  {
    type: "ticket",
    table: "tickets",
    attribute: "quantity",
    values: [11, 10],
    make: async (system) => {
      const owner = await system.signUp();
      const event = await system.createEvent(owner.token);
      const id = await system.createTicket(owner.token, event.id, { quantity: 10 });
      return { id, path: `/v1/tickets/${id}`, token: owner.token };
    },
  },
  {
    type: "event-topic",
    table: "event_topics",
    attribute: "name",
    values: ["Changed topic", "Original topic"],
    make: async (system) => {
      const id = await system.createTopic("Original topic");
      return { id, path: `/v1/event-topics/${id}`, token: system.admin.token };
    },
  },
  {
    type: "user",
    table: "users",
    attribute: "first-name",
    values: ["Changed", "Original"],
    make: async (system) => {
      const user = await system.signUp();
      const path = `/v1/users/${user.id}`;
      const named = await system.call("PATCH", path, {
        token: system.admin.token,
        body: { data: { type: "user", id: user.id, attributes: { "first-name": "Original" } } },
      });
      expectStatus(named, 200);
      return { id: user.id, path, token: system.admin.token };
    },
  },
];

/** Requests of this test database waiting for a lock. */
async function waiting(system: TestSystem): Promise<number> {
  const [{ count }] = await system.sql`select count(*)::int as count from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'`;
  return count;
}

Deno.test("[catalog] concurrent PATCHes of one row: the last fact says what the API shows", async (t) => {
  await using system = await startTestSystem();
  for (const c of CASES) {
    await t.step(c.type, async () => {
      const { id, path, token } = await c.make(system);
      const patch = (value: unknown) =>
        system.call("PATCH", path, {
          token,
          body: { data: { type: c.type, id, attributes: { [c.attribute]: value } } },
        });
      const held = await system.sql.reserve();
      try {
        await held`begin`;
        await held`select 1 from ${held(c.table)} where id = ${id} for update`;
        const first = patch(c.values[0]);
        await eventually(async () => await waiting(system) >= 1, 5_000, "the first to wait");
        const second = patch(c.values[1]);
        await eventually(async () => await waiting(system) >= 2, 5_000, "the second to wait");
        await held`commit`;
        expectStatus(await first, 200);
        expectStatus(await second, 200);
      } finally {
        held.release();
      }
      const shown = (await system.call("GET", path, { token })).body.data.attributes[c.attribute];
      const facts = (await system.readFacts()).filter((fact) =>
        fact.type.startsWith(`catalog.${c.type}.`) && String(fact.data.id) === id
      );
      assert.deepEqual(facts.at(-1)?.data[c.attribute], shown, "the last fact and the API");
    });
  }
});

Deno.test("[catalog] a PATCH that waited for a row soft-deleted meanwhile is a 404, no change", async (t) => {
  // The PATCH found the row live, then waited for its lock while a DELETE trashed it: it went on,
  // answered 200 with `deleted-at` set and announced the change after the deletion (a client saw
  // its change saved on a row that was gone).
  await using system = await startTestSystem();
  for (const c of CASES) {
    await t.step(c.type, async () => {
      const { id, path, token } = await c.make(system);
      const updates = async () =>
        (await system.readFacts()).filter((fact) =>
          fact.type === `catalog.${c.type}.updated` && String(fact.data.id) === id
        ).length;
      // A case's own set-up may announce an update (a user named by an admin).
      const updatesBefore = await updates();
      const held = await system.sql.reserve();
      let patched;
      try {
        await held`begin`;
        await held`select 1 from ${held(c.table)} where id = ${id} for update`;
        const patch = system.call("PATCH", path, {
          token,
          body: { data: { type: c.type, id, attributes: { [c.attribute]: c.values[0] } } },
        });
        await eventually(async () => await waiting(system) >= 1, 5_000, "the PATCH to wait");
        await held`update ${held(c.table)} set deleted_at = now() where id = ${id}`;
        await held`commit`;
        patched = await patch;
      } finally {
        held.release();
      }
      assert.equal(patched.status, 404, JSON.stringify(patched.body));
      const [row] = await system.sql`select * from ${system.sql(c.table)} where id = ${id}`;
      assert.equal(row[c.attribute.replace("-", "_")], c.values[1]);
      assert.equal(await updates(), updatesBefore, "no update announced");
    });
  }
});

Deno.test("[catalog] an admin's restore that waited for an event restored meanwhile leaves it as it is", async () => {
  // Two admins restore one past event at once; the first restores it (back as a draft) and its
  // organizers publish it before the second, which found it trashed, gets the row's lock. The
  // second went on restoring a live event: its past start sent the published event back to
  // draft, out of every public list, and announced that.
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { state: "published" } });
  await system.sql`update events set starts_at = now() - interval '2 days',
    ends_at = now() + interval '1 day' where id = ${event.id}`;
  const admin = system.admin.token;
  expectStatus(await system.call("DELETE", `/v1/events/${event.id}`, { token: admin }), 200);
  const updates = async () =>
    (await system.readFacts()).filter((fact) =>
      fact.type === "catalog.event.updated" && String(fact.data.id) === event.id
    ).length;
  const held = await system.sql.reserve();
  let restored;
  let updatesBefore;
  try {
    await held`begin`;
    await held`select 1 from events where id = ${event.id} for update`;
    const restore = system.call("PATCH", `/v1/events/${event.id}?get_trashed=true`, {
      token: admin,
      body: { data: { type: "event", id: event.id, attributes: { "deleted-at": null } } },
    });
    await eventually(async () => await waiting(system) >= 1, 5_000, "the restore to wait");
    // The first restore, and the organizers' publication after it.
    await held`update events set deleted_at = null, state = 'published' where id = ${event.id}`;
    await held`commit`;
    updatesBefore = await updates();
    restored = await restore;
  } finally {
    held.release();
  }
  expectStatus(restored, 200);
  assert.equal(restored.body.data.attributes.state, "published");
  const [row] = await system.sql`select state, deleted_at from events where id = ${event.id}`;
  assert.deepEqual(row, { state: "published", deleted_at: null });
  assert.equal(await updates(), updatesBefore, "no change announced");
});
