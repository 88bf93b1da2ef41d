import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Bus } from "@shared/bus.ts";
import { openDatabase } from "@shared/db.ts";
import { ensureFactStream } from "@shared/fact_streams.ts";
import { facts } from "@shared/subjects.ts";
import { factSubject } from "@shared/fact_names.ts";
import { testDatabase } from "@shared/testing.ts";
import { factBus } from "@testing/fact_bus.ts";
import { activityCount, makeFact, publishFacts, startAuditOn } from "./_test_utils.ts";
import { DURABLE, migrateAudit, SCHEMA } from "./service.ts";
import { applyAllFacts } from "./follow_all.ts";
import { createLogger } from "@shared/log.ts";
import type { Fact } from "@shared/facts.ts";

/** True when the audit consumer has nothing left to deliver or to see acknowledged. */
async function drained(bus: Bus): Promise<boolean> {
  const jsm = await jetstreamManager(bus.nc);
  const info = await jsm.consumers.info(facts.stream(bus.prefix), DURABLE);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

Deno.test("[audit] a fact becomes one activity, even when it comes again after the window", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  await using audit = await startAuditOn(b.bus, db.url);
  const js = jetstream(b.bus.nc);
  const fact = makeFact("catalog.event.updated", { id: "5" }, {
    time: new Date("2030-01-02T03:04:05.678Z"),
  });
  const body = JSON.stringify(fact);
  const subject = b.bus.subject(factSubject(fact.type));
  await js.publish(subject, body, { msgID: fact.id });
  // Inside the window JetStream itself drops the retry.
  const retry = await js.publish(subject, body, { msgID: fact.id });
  assert.equal(retry.duplicate, true);
  // After the window (simulated with another message id) the stream keeps it: audit must not.
  const late = await js.publish(subject, body, { msgID: `${fact.id}-late` });
  assert.equal(late.duplicate, false);
  await eventually(() => drained(b.bus), 10_000, "the consumer drained");
  const rows = await audit.sql`select * from activities`;
  assert.equal(rows.length, 1);
  assert.equal(rows[0].fact_id, fact.id);
  assert.equal(rows[0].action, "Event 5 updated");
  assert.equal(rows[0].actor, "admin@example.com (1)");
  assert.equal(rows[0].occurred_at.toISOString(), "2030-01-02T03:04:05.678Z");
});

Deno.test("[audit] a backlog is written in batches of at most batchSize", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  const published = Array.from({ length: 2500 }, () => makeFact());
  await publishFacts(b.bus, published);
  await using audit = await startAuditOn(b.bus, db.url, { batchSize: 500 });
  await eventually(
    async () => await activityCount(audit.sql) === 2500,
    20_000,
    "2500 activities",
  );
  // Rows of one insert share its transaction's now(): one recorded_at per batch.
  const batches = await audit.sql`select recorded_at, count(*)::int as n from activities
    group by recorded_at`;
  assert.ok(batches.every((batch) => batch.n <= 500), "no batch above 500");
  // Batches, not one insert per fact; how full each is depends on how fast the facts arrive
  // (a loaded CI machine once wrote these 2,500 in 12 inserts, not 5), so the bound is loose.
  assert.ok(batches.length <= 50, `2500 facts took ${batches.length} inserts`);
});

Deno.test("[audit] malformed, misrouted and refused facts are parked; later facts go on", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  await using audit = await startAuditOn(b.bus, db.url);
  const js = jetstream(b.bus.nc);
  const subject = b.bus.subject(factSubject("catalog.event-topic.created"));
  await js.publish(subject, "not json");
  await js.publish(subject, JSON.stringify({ id: "x", verb: "created" }));
  // Valid by the schema, but on another fact's subject.
  const misrouted = makeFact("catalog.event.created");
  await js.publish(subject, JSON.stringify(misrouted));
  // Valid by the schema, but Postgres has no year 0: it comes in a batch with a good fact.
  const refused = makeFact(undefined, {}, { time: new Date("0000-01-01T00:00:00Z") });
  const good = makeFact();
  await publishFacts(b.bus, [refused, good]);
  await eventually(() => drained(b.bus), 10_000, "the consumer drained");
  const rows = await audit.sql`select fact_id from activities`;
  assert.deepEqual(rows.map((row) => row.fact_id), [good.id]);
  const jsm = await jetstreamManager(b.bus.nc);
  const parked = await jsm.streams.info(facts.parkedStream(b.prefix));
  assert.equal(parked.state.messages, 4);
  // After it, facts still flow.
  const later = makeFact();
  await publishFacts(b.bus, [later]);
  await eventually(async () => await activityCount(audit.sql) === 2, 10_000, "the later fact");
});

/** A real audit process (services/audit/main.ts) on the test's database, NATS and prefix. */
function spawnAudit(databaseUrl: string, natsUrl: string, prefix: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./main.ts", import.meta.url).pathname],
    env: {
      DATABASE_URL: databaseUrl,
      AUDIT_DATABASE_URL: databaseUrl,
      NATS_URL: natsUrl,
      BUS_PREFIX: prefix,
      LOG_LEVEL: "error",
    },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

/**
 * A TCP relay in front of NATS whose client-to-server half can be cut: the client still
 * receives, but what it sends (its acks) is dropped. A process killed after the cut has written
 * batches it never acknowledged, for certain rather than by the luck of the kill's timing.
 */
function natsRelay(natsUrl: string) {
  const target = new URL(natsUrl);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const pipes: Promise<void>[] = [];
  let cut = false;
  const close = (conn: Deno.Conn) => {
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  async function pipe(from: Deno.Conn, to: Deno.Conn, dropping: () => boolean): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
        if (dropping()) continue;
        for (let sent = 0; sent < n;) sent += await to.write(buffer.subarray(sent, n));
      }
    } catch {
      /* one side went away: the other goes too */
    } finally {
      close(from);
      close(to);
    }
  }
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port || 4222),
      });
      conns.push(client, server);
      pipes.push(pipe(client, server, () => cut), pipe(server, client, () => false));
    }
  })().catch(() => {});
  return {
    url: `nats://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    cut() {
      cut = true;
    },
    async close() {
      listener.close();
      conns.forEach(close);
      await accepting;
      await Promise.all(pipes);
    },
  };
}

Deno.test("[audit] a process SIGKILLed mid-backlog loses nothing and writes nothing twice", async () => {
  await using db = await testDatabase();
  await using b = await factBus();
  const stream = await ensureFactStream(b.bus);
  const total = 20_000;
  const published = Array.from({ length: total }, () => makeFact());
  await publishFacts(b.bus, published);
  const check = await openDatabase(db.url, { schema: SCHEMA, max: 2 });
  // The process creates the table; until then there is nothing to count.
  const written = () => activityCount(check).catch(() => 0);
  const jsm = await jetstreamManager(b.bus.nc);
  const relay = natsRelay(b.natsUrl);
  let first: Deno.ChildProcess | undefined = spawnAudit(db.url, relay.url, b.prefix);
  let second: Deno.ChildProcess | undefined;
  try {
    await eventually(async () => await written() > 0, 30_000, "a first batch written");
    // From now on its acks are lost: the batches it still commits are written, not acked.
    relay.cut();
    const atCut = await written();
    await eventually(async () => await written() > atCut, 10_000, "a batch written after the cut");
    first.kill("SIGKILL");
    const status = await first.status;
    first = undefined;
    assert.equal(status.signal, "SIGKILL");
    const before = await written();
    assert.ok(before < total, `killed mid-backlog (${before} of ${total} written)`);
    const dead = await jsm.consumers.info(stream, DURABLE);
    const acked = total - dead.num_pending - dead.num_ack_pending;
    assert.ok(
      before > acked,
      `facts written but never acknowledged must come again (${before} written, ${acked} acked)`,
    );

    second = spawnAudit(db.url, b.natsUrl, b.prefix);
    // What the dead process held comes back only after the consumer's ack wait (30 s).
    await eventually(async () => await written() >= total, 90_000, "every fact written");
    await eventually(() => drained(b.bus), 90_000, "the consumer drained");
    const info = await jsm.consumers.info(stream, DURABLE);
    // More deliveries than facts: the dead process's unacknowledged facts, already written
    // ones among them, were delivered again, and the second process skipped those.
    assert.equal(info.delivered.stream_seq, total);
    assert.ok(
      info.delivered.consumer_seq > total,
      `facts were redelivered (${info.delivered.consumer_seq} deliveries of ${total} facts)`,
    );
    assert.equal(await written(), total, "exactly one activity per fact");
    const rows = await check`select fact_id::text as fact_id, count(*)::int as n
      from activities group by fact_id`;
    assert.equal(rows.length, total, "as many distinct fact ids as activities");
    assert.ok(rows.every((row) => row.n === 1), "no fact written twice");
    const missing = new Set(published.map((fact) => fact.id));
    for (const row of rows) missing.delete(row.fact_id);
    assert.deepEqual([...missing], [], "no gaps: every published fact has its activity");
  } finally {
    for (const child of [first, second]) {
      if (!child) continue;
      try {
        child.kill("SIGTERM");
      } catch { /* it has exited already */ }
      await child.status;
    }
    await relay.close();
    await check.end();
  }
});

Deno.test("[audit] a fact of a type audit does not know yet becomes an activity too", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  await using audit = await startAuditOn(b.bus, db.url);
  const js = jetstream(b.bus.nc);
  // A producer deployed before audit announces a new type (allowed without a new version).
  const widget = {
    ...makeFact(),
    id: crypto.randomUUID(),
    type: "catalog.widget.created",
    subject: "/v1/widgets/7",
    data: { id: "7", name: "A widget" },
  };
  await js.publish(b.bus.subject(factSubject(widget.type)), JSON.stringify(widget));
  // Without a resource id there is nothing to name: parked.
  const nameless = { ...widget, id: crypto.randomUUID(), data: { name: "no id" } };
  await js.publish(b.bus.subject(factSubject(widget.type)), JSON.stringify(nameless));
  await eventually(() => drained(b.bus), 10_000, "the consumer drained");
  const rows = await audit.sql`select fact_id, action, type, verb from activities`;
  assert.deepEqual(rows.map((row) => ({ ...row })), [
    { fact_id: widget.id, action: "Widget 7 created", type: "widget", verb: "created" },
  ]);
  const jsm = await jetstreamManager(b.bus.nc);
  assert.equal((await jsm.streams.info(facts.parkedStream(b.prefix))).state.messages, 1);
});

Deno.test("[audit] a fact id that is not a UUID, and an actor without an address, still make one activity each", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  await using audit = await startAuditOn(b.bus, db.url);
  const js = jetstream(b.bus.nc);
  const publishRaw = (fact: { id: string; type: string }, msgID = fact.id) =>
    js.publish(b.bus.subject(factSubject(fact.type)), JSON.stringify(fact), { msgID });
  // The envelope takes any id, as CloudEvents does: the uuid column refused these, and the facts
  // were parked without an activity (a review). The second comes again under another message id.
  const named = { ...makeFact(), id: "evt-1796482992435" };
  const ulid = { ...makeFact(), id: "01ARZ3NDEKTSV4RRFFQ69G5FAV" };
  await publishRaw(named);
  await publishRaw(ulid);
  await publishRaw(ulid, "again");
  // An actor id without an address: named by the address audit learnt from the user's own fact,
  // else as an unknown user is named, where it read " (5)".
  const signUp = makeFact("catalog.user.created", { id: "5", email: "five@example.com" });
  const { actoremail: _known, ...byKnown } = makeFact("catalog.event-topic.created", {}, {
    actor: { id: "5", email: "" },
  });
  const { actoremail: _unknown, ...byUnknown } = makeFact("catalog.event-topic.created", {}, {
    actor: { id: "6", email: "" },
  });
  await publishFacts(b.bus, [signUp]);
  await publishRaw(byKnown);
  await publishRaw(byUnknown);
  await eventually(async () => await activityCount(audit.sql) === 5, 10_000, "five activities");
  await eventually(() => drained(b.bus), 10_000, "the consumer drained");
  const rows = await audit.sql<{ resource_id: string; actor: string }[]>`
    select resource_id, actor from activities order by id`;
  assert.deepEqual(rows.map((row) => ({ ...row })), [
    { resource_id: named.data.id, actor: "admin@example.com (1)" },
    { resource_id: ulid.data.id, actor: "admin@example.com (1)" },
    { resource_id: "5", actor: "admin@example.com (1)" },
    { resource_id: byKnown.data.id, actor: "five@example.com (5)" },
    { resource_id: byUnknown.data.id, actor: "user 6" },
  ]);
  const jsm = await jetstreamManager(b.bus.nc);
  assert.equal((await jsm.streams.info(facts.parkedStream(b.prefix))).state.messages, 0);
});

Deno.test("[audit] a new version published beside its type is the same change: one activity", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  await using audit = await startAuditOn(b.bus, db.url);
  const js = jetstream(b.bus.nc);
  const publishRaw = (fact: { type: string }) =>
    js.publish(b.bus.subject(factSubject(fact.type)), JSON.stringify(fact));
  // The README's rule for a payload change: its `.v2` is published beside the old type until
  // the old type's subscribers moved. Found by a review: audit wrote both, two activities for
  // one change ("Event 5 updated" twice).
  const old = makeFact("catalog.event.updated", { id: "5" });
  const twin = { ...old, id: crypto.randomUUID(), type: "catalog.event.updated.v2" };
  // A version of a type audit knows of in no form is a change of its own.
  const widget = {
    ...makeFact(),
    id: crypto.randomUUID(),
    type: "catalog.widget.created.v2",
    subject: "/v1/widgets/7",
    data: { id: "7" },
  };
  await publishFacts(b.bus, [old]);
  await publishRaw(twin);
  await publishRaw(widget);
  await eventually(() => drained(b.bus), 10_000, "the consumer drained");
  const rows = await audit.sql`select fact_id::text, action from activities order by id`;
  assert.deepEqual(rows.map((row) => ({ ...row })), [
    { fact_id: old.id, action: "Event 5 updated" },
    { fact_id: widget.id, action: "Widget 7 created" },
  ]);
  const jsm = await jetstreamManager(b.bus.nc);
  const parked = await jsm.streams.info(facts.parkedStream(b.prefix)).catch(() => null);
  assert.equal(parked?.state.messages ?? 0, 0, "the twin is not parked either");
});

Deno.test("[audit] an unknown type's data that a sentence would trip on holds nothing back", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  await using audit = await startAuditOn(b.bus, db.url);
  const js = jetstream(b.bus.nc);
  const hostile = {
    ...makeFact(),
    id: crypto.randomUUID(),
    type: "catalog.widget.created",
    subject: "/v1/widgets/7",
    // Interpolated as is, {"toString":0} throws "Cannot convert object to primitive value".
    data: { id: "7", event: { toString: 0 } },
  };
  await js.publish(b.bus.subject(factSubject(hostile.type)), JSON.stringify(hostile));
  const good = makeFact();
  await publishFacts(b.bus, [good]);
  await eventually(() => drained(b.bus), 10_000, "the consumer drained");
  const rows = await audit.sql`select fact_id, action from activities order by id`;
  assert.deepEqual(rows.map((row) => ({ ...row })), [
    { fact_id: hostile.id, action: "Widget 7 created" },
    { fact_id: good.id, action: `Event topic ${good.data.id} created` },
  ]);
});

Deno.test("[audit] applyAllFacts parks a fact it cannot describe and writes the rest", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: SCHEMA, max: 2 });
  try {
    await migrateAudit(sql);
    const good = makeFact();
    const broken = { ...makeFact(), type: "catalog.widget.created", data: { id: "8", event: {} } };
    Object.defineProperty(broken.data, "event", {
      get: () => ({ toString: 0 }),
      enumerable: true,
    });
    const log = createLogger("test", "error");
    const result = await applyAllFacts(sql, [broken as unknown as Fact, good], log);
    assert.equal(result.inserted, 1);
    assert.deepEqual(result.reject?.map((r) => r.id), [broken.id]);
    assert.match(result.reject![0].reason, /^cannot describe it/);
  } finally {
    await sql.end();
  }
});
