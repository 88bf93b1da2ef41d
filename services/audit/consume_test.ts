import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Bus } from "@shared/bus.ts";
import { openDatabase } from "@shared/db.ts";
import { deleteFactStream, ensureFactStream } from "@shared/facts.ts";
import { facts } from "@shared/subjects.ts";
import { testBus, testDatabase } from "@shared/testing.ts";
import {
  activityCount,
  makeFact,
  publishFacts,
  quiet,
  startAuditOn,
  until,
} from "./_test_utils.ts";
import { DURABLE, SCHEMA } from "./service.ts";

/** True when the audit consumer has nothing left to deliver or to see acknowledged. */
async function drained(bus: Bus): Promise<boolean> {
  const jsm = await jetstreamManager(bus.nc);
  const info = await jsm.consumers.info(facts.stream(bus.prefix), DURABLE);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

Deno.test("[audit] a fact becomes one activity, even when it comes again after the window", async () => {
  await using db = await testDatabase();
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const audit = await startAuditOn(b.bus, db.url);
  try {
    const js = jetstream(b.bus.nc);
    const fact = makeFact({
      type: "event",
      verb: "updated",
      subject: facts.subject("catalog", "event", "updated"),
      resource: { type: "event", id: "5" },
      occurredAt: "2030-01-02T03:04:05.678Z",
    });
    const body = JSON.stringify(fact);
    await js.publish(b.bus.subject(fact.subject), body, { msgID: fact.id });
    // Inside the window JetStream itself drops the retry.
    const retry = await js.publish(b.bus.subject(fact.subject), body, { msgID: fact.id });
    assert.equal(retry.duplicate, true);
    // After the window (simulated with another message id) the stream keeps it: audit must not.
    const late = await js.publish(b.bus.subject(fact.subject), body, { msgID: `${fact.id}-late` });
    assert.equal(late.duplicate, false);
    await until(() => drained(b.bus), 10_000, "the consumer drained");
    const rows = await audit.sql`select * from activities`;
    assert.equal(rows.length, 1);
    assert.equal(rows[0].fact_id, fact.id);
    assert.equal(rows[0].action, "Event 5 updated");
    assert.equal(rows[0].actor, "admin@example.com (1)");
    assert.equal(rows[0].occurred_at.toISOString(), "2030-01-02T03:04:05.678Z");
  } finally {
    await audit.stop();
    await deleteFactStream(b.bus);
  }
});

Deno.test("[audit] a backlog is written in batches of at most batchSize", async () => {
  await using db = await testDatabase();
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const published = Array.from({ length: 2500 }, () => makeFact());
  await publishFacts(b.bus, published);
  const audit = await startAuditOn(b.bus, db.url, { batchSize: 500 });
  try {
    await until(async () => await activityCount(audit.sql) === 2500, 20_000, "2500 activities");
    // Rows of one insert share its transaction's now(): one recorded_at per batch.
    const batches = await audit.sql`select recorded_at, count(*)::int as n from activities
      group by recorded_at`;
    assert.ok(batches.every((batch) => batch.n <= 500), "no batch above 500");
    assert.ok(batches.length <= 10, `2500 facts took ${batches.length} inserts`);
  } finally {
    await audit.stop();
    await deleteFactStream(b.bus);
  }
});

Deno.test("[audit] malformed, misrouted and refused facts are parked; later facts go on", async () => {
  await using db = await testDatabase();
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const audit = await startAuditOn(b.bus, db.url);
  try {
    const js = jetstream(b.bus.nc);
    const subject = b.bus.subject(facts.subject("catalog", "event-topic", "created"));
    await js.publish(subject, "not json");
    await js.publish(subject, JSON.stringify({ id: "x", verb: "created" }));
    // Valid by the schema, but on another fact's subject.
    const misrouted = makeFact({ type: "event" });
    await js.publish(subject, JSON.stringify(misrouted));
    // Valid by the schema, but Postgres has no year 0: it comes in a batch with a good fact.
    const refused = makeFact({ occurredAt: "0000-01-01T00:00:00Z" });
    const good = makeFact();
    await publishFacts(b.bus, [refused, good]);
    await until(() => drained(b.bus), 10_000, "the consumer drained");
    const rows = await audit.sql`select fact_id from activities`;
    assert.deepEqual(rows.map((row) => row.fact_id), [good.id]);
    const jsm = await jetstreamManager(b.bus.nc);
    const parked = await jsm.streams.info(facts.parkedStream(b.prefix));
    assert.equal(parked.state.messages, 4);
    // After it, facts still flow.
    const later = makeFact();
    await publishFacts(b.bus, [later]);
    await until(async () => await activityCount(audit.sql) === 2, 10_000, "the later fact");
  } finally {
    await audit.stop();
    await deleteFactStream(b.bus);
  }
});

Deno.test("[audit] killed mid-backlog, it resumes with no duplicates and no gaps", async () => {
  await using db = await testDatabase();
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const total = 20_000;
  const published = Array.from({ length: total }, () => makeFact());
  await publishFacts(b.bus, published);
  // The first instance has connections of its own, so killing them leaves the test's intact.
  const doomedBus = await Bus.connect({ url: b.natsUrl, prefix: b.prefix, logger: quiet });
  const doomedSql = await openDatabase(db.url, { schema: SCHEMA, max: 2 });
  const first = await startAuditOn(doomedBus, db.url, {
    sql: doomedSql,
    batchSize: 500,
    ackWaitMs: 1500,
  });
  const check = await openDatabase(db.url, { schema: SCHEMA, max: 2 });
  let second: Awaited<ReturnType<typeof startAuditOn>> | undefined;
  try {
    await until(async () => await activityCount(check) >= 2000, 20_000, "a first part written");
    // A crash: the connection drops with a batch in hand (its acks are lost), the pool dies.
    await doomedBus.nc.close();
    await doomedSql.end({ timeout: 0 });
    await first.service.consumer.stop();
    await first.service.running.stop();
    const before = await activityCount(check);
    assert.ok(before < total, "killed before the backlog was done");

    second = await startAuditOn(b.bus, db.url, { batchSize: 500, ackWaitMs: 1500 });
    await until(async () => await activityCount(check) === total, 30_000, "every fact written");
    await until(() => drained(b.bus), 10_000, "the consumer drained");
    const ids = await check`select fact_id from activities`;
    assert.equal(ids.length, total, "no duplicates");
    assert.deepEqual(
      new Set(ids.map((row) => row.fact_id)),
      new Set(published.map((fact) => fact.id)),
      "no gaps",
    );
  } finally {
    await second?.stop();
    await check.end();
    await deleteFactStream(b.bus);
  }
});
