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
