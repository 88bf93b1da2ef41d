import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Bus } from "@shared/bus.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import type { FactData, FactType } from "@shared/fact_catalog.ts";
import type { Fact } from "@shared/facts.ts";
import { facts } from "@shared/subjects.ts";
import { testDatabase } from "@shared/testing.ts";
import { factBus } from "@testing/fact_bus.ts";
import { makeFact, publishFacts, quiet, startAuditOn } from "./_test_utils.ts";
import { applyAllFacts } from "./follow_all.ts";
import { DURABLE, migrateAudit, SCHEMA } from "./service.ts";

async function drained(bus: Bus): Promise<boolean> {
  const jsm = await jetstreamManager(bus.nc);
  const info = await jsm.consumers.info(facts.stream(bus.prefix), DURABLE);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

async function parkedCount(bus: Bus): Promise<number> {
  const jsm = await jetstreamManager(bus.nc);
  const info = await jsm.streams.info(facts.parkedStream(bus.prefix)).catch(() => null);
  return info?.state.messages ?? 0;
}

/** A fact at `ms` milliseconds into 2030, optionally saying what it changed or that it purged. */
function at<K extends FactType>(
  ms: number,
  type: K,
  data: Partial<FactData<K>>,
  extra: { changed?: string; purged?: true } = {},
): Fact {
  const fact = makeFact(type, data, { time: new Date(Date.UTC(2030, 0, 1) + ms) });
  return { ...fact, ...extra } as Fact;
}

type Role = FactData<"catalog.users-events-role.created">["role"];

const grant = (ms: number, verb: "created" | "updated" | "deleted", role: Role, user = "7") =>
  at(ms, `catalog.users-events-role.${verb}`, { id: "11", role, user, event: "3" });

/** Grant before the user's first fact, the user, a role change, an email change, a revoke. */
function story(): Fact[] {
  const user = { id: "7", email: "grace@example.com" };
  return [
    grant(1, "created", "organizer"),
    at(2, "catalog.user.created", user),
    grant(3, "updated", "coorganizer"),
    at(4, "catalog.user.updated", { ...user, email: "ada@example.com" }, { changed: "email" }),
    grant(5, "deleted", "coorganizer"),
  ];
}

const told = [
  'Role "Organizer" created for user 7 in event 3',
  'User "grace@example.com" (7) created',
  'Role updated to "Co-organizer" for user "grace@example.com" (7) in event 3',
  "User 7 email changed from grace@example.com to ada@example.com",
  'User "ada@example.com" (7) removed from role "Co-organizer" in event 3',
];

async function actionsOf(sql: Sql, list: Fact[]): Promise<string[]> {
  const rows = await sql`select fact_id::text as fact_id, action from activities`;
  const byFact = new Map(rows.map((row) => [row.fact_id, row.action]));
  return list.map((fact) => byFact.get(fact.id));
}

Deno.test("[audit] role sentences name the user audit has seen, in fact order", async (t) => {
  await t.step("one batch: the user's facts before a grant in it count", async () => {
    await using db = await testDatabase();
    await using b = await factBus({ ensureStream: true });
    const list = story();
    await publishFacts(b.bus, list);
    await using audit = await startAuditOn(b.bus, db.url);
    await eventually(() => drained(b.bus), 10_000, "the consumer drained");
    assert.deepEqual(await actionsOf(audit.sql, list), told);
    assert.equal(await parkedCount(b.bus), 0, "a grant before its user is no poison fact");
  });
  await t.step("one fact a batch: what earlier batches taught is kept", async () => {
    await using db = await testDatabase();
    await using b = await factBus({ ensureStream: true });
    const list = story();
    await publishFacts(b.bus, list);
    await using audit = await startAuditOn(b.bus, db.url, { batchSize: 1 });
    await eventually(() => drained(b.bus), 10_000, "the consumer drained");
    assert.deepEqual(await actionsOf(audit.sql, list), told);
    assert.equal(await parkedCount(b.bus), 0);
  });
});

Deno.test("[audit] what audit knows of a user follows their newest fact, and a purge forgets it", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: SCHEMA, max: 2 });
  try {
    await migrateAudit(sql);
    const apply = async (...list: Fact[]) => {
      const result = await applyAllFacts(sql, list, quiet);
      assert.deepEqual(result.reject, []);
      return await actionsOf(sql, list);
    };
    const user = { id: "7", email: "grace@example.com" };
    const older = at(10, "catalog.user.updated", { ...user, email: "old@example.com" }, {
      changed: "email",
    });
    const newer = at(20, "catalog.user.updated", { ...user, email: "new@example.com" }, {
      changed: "email",
    });
    // Another instance (or a redelivery) handles the older change after the newer one.
    assert.deepEqual(await apply(newer), ["User 7 email changed to new@example.com"]);
    assert.deepEqual(await apply(older), ["User 7 email changed to old@example.com"]);
    assert.deepEqual(await apply(grant(30, "created", "organizer")), [
      'Role "Organizer" created for user "new@example.com" (7) in event 3',
    ]);
    // A login says the address too.
    await apply(at(40, "catalog.user.logged-in", { ...user, email: "login@example.com" }));
    assert.deepEqual(await apply(grant(50, "updated", "coorganizer")), [
      'Role updated to "Co-organizer" for user "login@example.com" (7) in event 3',
    ]);

    // A purge announces the user's grants first, then the user: their address goes with them.
    const revoke = { ...grant(60, "deleted", "coorganizer"), purged: true as const };
    const purge = at(61, "catalog.user.deleted", user, { purged: true });
    assert.deepEqual(await apply(revoke, purge), [
      'User "login@example.com" (7) removed from role "Co-organizer" in event 3',
      "User 7 deleted permanently",
    ]);
    const [kept] = await sql`select email from user_emails where user_id = '7'`;
    assert.equal(kept.email, null, "no address kept for a purged user");
    // A fact from before the purge, handled late, does not bring it back.
    await apply(at(55, "catalog.user.updated", { ...user, email: "late@example.com" }));
    assert.deepEqual(await apply(grant(70, "deleted", "owner")), [
      'User 7 removed from role "Owner" in event 3',
    ]);
  } finally {
    await sql.end();
  }
});

Deno.test("[audit] a user id Postgres cannot take costs its fact no activity, nor its batch", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: SCHEMA, max: 2 });
  try {
    await migrateAudit(sql);
    // A user fact of a type this build does not know keeps any non-empty id (shared/facts.ts
    // `unknownFact`); looking its address up by a NUL failed the whole batch (Postgres refuses
    // NUL in text), which then stalled the log 30 s and parked the fact as poison, no activity.
    const odd = {
      ...at(1, "catalog.user.created", { id: "7" }),
      type: "catalog.user.suspended",
      data: { id: "7\u0000" },
    } as unknown as Fact;
    const good = at(2, "catalog.user.created", { id: "8", email: "ada@example.com" });
    const result = await applyAllFacts(sql, [odd, good], quiet);
    assert.deepEqual(result.reject, []);
    assert.deepEqual(await actionsOf(sql, [odd, good]), [
      "User 7  suspended",
      'User "ada@example.com" (8) created',
    ]);
  } finally {
    await sql.end();
  }
});
