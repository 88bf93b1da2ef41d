import assert from "node:assert/strict";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { storedMessages } from "@testing/facts.ts";
import { outboxRelay } from "@testing/outbox_relay.ts";
import postgres from "postgres";
import { openDatabase, type Sql } from "./db.ts";
import { changeWithFact, installOutbox } from "./facts.ts";
import { deleteFactStream, ensureFactStream } from "./fact_streams.ts";
import { FactRelay, takeOutboxBatch } from "./fact_relay.ts";
import { metrics } from "./metrics.ts";
import { facts } from "./subjects.ts";
import { recordingLogger, testBus, testDatabase } from "./testing.ts";
import { silentProxyTo } from "@testing/silent_proxy.ts";
import { laggingProxy } from "@testing/lagging_proxy.ts";
import { startNatsServer } from "@testing/nats_server.ts";
import { eventually } from "@testing/eventually.ts";
import { Bus } from "./bus.ts";
import { createLogger } from "./log.ts";

/** What `log` said: each line's level and message. */
function said(log: ReturnType<typeof recordingLogger>) {
  return log.lines.map(({ level, message }) => ({ level, message }));
}

// Found by a review: with the stream gone (NATS started again on an empty volume, its JetStream
// store lost), every fact recorded since stayed in the outbox until the service was restarted.
Deno.test("[facts] FactRelay logs a missing stream once, makes it again and publishes again", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  const sql = await openDatabase(db.url, { schema: "relay" });
  const log = recordingLogger();
  const relay = new FactRelay(sql, tb.bus, log);
  try {
    await installOutbox(sql);
    // Written as the outbox holds it (the relay does not read the fact inside).
    const id = crypto.randomUUID();
    await sql`insert into outbox (id, subject, payload)
      values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id })})`;

    // No stream (never made, or lost): the attempt fails, the cause is logged once, and the
    // relay makes the stream as a start would.
    await relay.flush();
    const stream = facts.stream(tb.prefix);
    assert.deepEqual(said(log), [{
      level: "warn",
      message: `cannot publish facts yet (stream ${stream} does not exist); will retry`,
    }]);
    const [{ count: waiting }] = await sql`select count(*)::int from outbox`;
    assert.equal(waiting, 1, "the fact stays in the outbox meanwhile");

    await relay.flush();
    assert.deepEqual(said(log).at(-1), { level: "info", message: "publishing facts again" });
    assert.equal(log.lines.length, 2);
    const jsm = await jetstreamManager(tb.bus.nc);
    assert.equal((await jsm.streams.info(stream)).state.messages, 1);
    const [{ count: left }] = await sql`select count(*)::int from outbox`;
    assert.equal(left, 0);
  } finally {
    await relay.stop();
    await deleteFactStream(tb.bus);
    await sql.end();
  }
});

// The same with a stream lost while the relay runs (its facts published before are gone with
// it): the facts recorded since reach the stream made again, none stays in the outbox.
Deno.test("[facts] FactRelay publishes again once a lost fact stream is made again", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  const sql = await openDatabase(db.url, { schema: "relay" });
  const relay = new FactRelay(sql, tb.bus, recordingLogger());
  const record = async () => {
    const id = crypto.randomUUID();
    await sql`insert into outbox (id, subject, payload)
      values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id })})`;
  };
  try {
    await installOutbox(sql);
    await ensureFactStream(tb.bus);
    await record();
    await relay.flush();
    const jsm = await jetstreamManager(tb.bus.nc);
    const stream = facts.stream(tb.prefix);
    await jsm.streams.delete(stream);
    await record();
    await record();
    for (let i = 0; i < 3; i++) await relay.flush();
    const [{ count: left }] = await sql`select count(*)::int from outbox`;
    assert.equal(left, 0, "no fact stays in the outbox");
    assert.equal((await jsm.streams.info(stream)).state.messages, 2);
  } finally {
    await relay.stop();
    await deleteFactStream(tb.bus);
    await sql.end();
  }
});

// Found by a review: a fact larger than NATS carries (max_payload, 1 MiB by default) was refused
// by the client at every attempt, so its batch never left the outbox: the facts behind it in the
// batch went out ahead of it (and again after each duplicate window), those after the batch never.
Deno.test("[facts] FactRelay sets aside a fact larger than NATS carries and publishes the rest in order", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  const sql = await openDatabase(db.url, { schema: "relay" });
  const log = recordingLogger();
  const relay = new FactRelay(sql, tb.bus, log);
  const record = async (name: string, filler = "") => {
    const id = crypto.randomUUID();
    await sql`insert into outbox (id, subject, payload)
      values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id, name, filler })})`;
    return id;
  };
  try {
    await installOutbox(sql);
    await ensureFactStream(tb.bus);
    await record("before");
    const big = await record("big", "x".repeat(tb.bus.nc.info!.max_payload));
    // More than one batch behind it.
    for (let i = 0; i < 250; i++) await record(`after ${i}`);
    for (let i = 0; i < 3; i++) await relay.flush();

    const [{ count: left }] = await sql`select count(*)::int from outbox`;
    assert.equal(left, 0, "no fact stays in the outbox");
    const aside = await sql`select id from outbox_oversized`;
    assert.deepEqual(aside.map((row) => row.id), [big], "the large fact is kept for the operator");
    const errors = log.lines.filter((line) => line.level === "error");
    assert.equal(errors.length, 1, "one error line for it");
    const jsm = await jetstreamManager(tb.bus.nc);
    const stream = facts.stream(tb.prefix);
    const names = [];
    for (let seq = 1; seq <= (await jsm.streams.info(stream)).state.messages; seq++) {
      names.push((await jsm.streams.getMessage(stream, { seq }))!.json<{ name: string }>().name);
    }
    assert.deepEqual(names, ["before", ...Array.from({ length: 250 }, (_, i) => `after ${i}`)]);
    relay.start(60_000); // reports the outbox's figures; publishes nothing more here
    const family = (await metrics.snapshot()).find((f) => f.name === "oe_outbox_set_aside");
    assert.equal(family?.series[0]?.value, 1, "the operator's metric shows it");
  } finally {
    await relay.stop();
    await deleteFactStream(tb.bus);
    await sql.end();
  }
});

// Found by a review: when the relay's Postgres host went away without a word (no FIN, no RST: a
// lost host, a failover to another address), its drain waited on the silent connection until the
// kernel gave up on it (TCP keepalive, over ten minutes); meanwhile this instance published
// nothing, though a new connection would have worked at once.
Deno.test("[facts] FactRelay gives up on a batch Postgres does not answer and goes on", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  await using proxy = silentProxyTo(db.url);
  const sql = await openDatabase(db.url, { schema: "relay" });
  const relaySql = await openDatabase(proxy.url, { schema: "relay", max: 3 });
  const relay = new FactRelay(relaySql, tb.bus, recordingLogger());
  const record = async () => {
    const id = crypto.randomUUID();
    await sql`insert into outbox (id, subject, payload)
      values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id })})`;
  };
  const jsm = await jetstreamManager(tb.bus.nc);
  const published = async () => (await jsm.streams.info(facts.stream(tb.prefix))).state.messages;
  const within = async (ms: number, count: number) => {
    const giveUpAt = Date.now() + ms;
    while (Date.now() < giveUpAt && await published() < count) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return await published();
  };
  try {
    await installOutbox(sql);
    await ensureFactStream(tb.bus);
    relay.start(100);
    await record();
    assert.equal(await within(5_000, 1), 1);
    // Every connection of the pool open when the host goes: a busy service's pool is full of
    // them. Through the pool, each batch after a given-up one went to the next silent
    // connection and waited out its own give-up (CI saw it: two connections, 40 s).
    await Promise.all([1, 2, 3].map(() => relaySql`select pg_sleep(0.05)`));
    proxy.loseHost();
    await record();
    assert.equal(await within(30_000, 2), 2, "published on a new connection");
  } finally {
    await relay.stop(100);
    await deleteFactStream(tb.bus);
    await sql.end();
    await relaySql.end({ timeout: 0.1 });
  }
});

// Found by a review: a drain took 200 facts whatever their size, so 200 facts near max_payload
// (events with descriptions of a megabyte, piled up while NATS was away) were read, stringified
// and encoded at once: hundreds of MiB in one service's memory.
Deno.test("[facts] a drain takes facts up to a byte bound, the first always, and the rest later in order", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  const sql = await openDatabase(db.url, { schema: "relay" });
  const relay = new FactRelay(sql, tb.bus, recordingLogger());
  const record = async (name: string, filler: string) => {
    const id = crypto.randomUUID();
    await sql`insert into outbox (id, subject, payload)
      values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id, name, filler })})`;
  };
  try {
    await installOutbox(sql);
    await ensureFactStream(tb.bus);
    const kilobytes = (n: number) => "x".repeat(n * 1024);
    for (let i = 0; i < 5; i++) await record(`fact ${i}`, kilobytes(300));
    const names = (rows: { payload: unknown }[]) =>
      rows.map((row) => (row.payload as { name: string }).name);
    await sql.begin(async (tx) => {
      const taken = await takeOutboxBatch(tx, 700 * 1024);
      assert.deepEqual(names(taken.rows), ["fact 0", "fact 1"], "within the bound");
      assert.equal(taken.more, true);
    });
    await sql.begin(async (tx) => {
      const first = await takeOutboxBatch(tx, 1024);
      assert.deepEqual(names(first.rows), ["fact 0"], "one larger than the bound goes alone");
      assert.equal(first.more, true);
      const all = await takeOutboxBatch(tx);
      assert.equal(all.rows.length, 5);
      assert.equal(all.more, false);
    });
    // Eight facts of a megabyte less a little after the five: 9.7 MB, more than one drain takes.
    for (let i = 5; i < 13; i++) await record(`fact ${i}`, kilobytes(1000));
    await sql.begin(async (tx) => {
      assert.equal((await takeOutboxBatch(tx)).more, true, "more than one drain's worth");
    });
    await relay.flush();
    const [{ count: left }] = await sql`select count(*)::int from outbox`;
    assert.equal(left, 0, "every fact left the outbox in one flush");
    const jsm = await jetstreamManager(tb.bus.nc);
    const stream = facts.stream(tb.prefix);
    const published = [];
    for (let seq = 1; seq <= (await jsm.streams.info(stream)).state.messages; seq++) {
      published.push(
        (await jsm.streams.getMessage(stream, { seq }))!.json<{ name: string }>().name,
      );
    }
    assert.deepEqual(published, Array.from({ length: 13 }, (_, i) => `fact ${i}`));
  } finally {
    await relay.stop();
    await deleteFactStream(tb.bus);
    await sql.end();
  }
});

// Found by a review: a batch was published all at once, so when JetStream refused one fact (a
// stream leader stepping down, a connection lost with that fact on the wire) and took the ones
// behind it, the batch was tried again and the refused fact landed after them: a subscriber got
// an event's deletion, then its older update, and kept it live. Real refusals here: a per-subject
// limit that turns new messages away on one subject only.
Deno.test("[facts] FactRelay keeps the outbox order when JetStream refuses a fact of a batch", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  const sql = await openDatabase(db.url, { schema: "relay" });
  const relay = new FactRelay(sql, tb.bus, recordingLogger());
  const stream = await ensureFactStream(tb.bus);
  const jsm = await jetstreamManager(tb.bus.nc);
  const record = async (subject: string) => {
    const id = crypto.randomUUID();
    await sql`insert into outbox (id, subject, payload)
      values (${id}, ${subject}, ${sql.json({ id })})`;
    return id;
  };
  try {
    await installOutbox(sql);
    await record("facts.catalog.event.updated");
    await relay.flush();
    const { config } = await jsm.streams.info(stream);
    // `event.updated` is full now; `event.deleted` still takes one.
    await jsm.streams.update(stream, {
      ...config,
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.New,
      discard_new_per_subject: true,
    });
    const updated = await record("facts.catalog.event.updated");
    const deleted = await record("facts.catalog.event.deleted");
    await relay.flush();
    await jsm.streams.update(stream, {
      ...config,
      max_msgs_per_subject: -1,
      discard: DiscardPolicy.Old,
      discard_new_per_subject: false,
    });
    await relay.flush();
    const order = (await storedMessages(tb.bus, stream)).map((m) => m.json<{ id: string }>().id);
    assert.deepEqual(order.slice(1), [updated, deleted], "the outbox order");
    const [{ count: left }] = await sql`select count(*)::int from outbox`;
    assert.equal(left, 0);
  } finally {
    await relay.stop();
    await deleteFactStream(tb.bus);
    await sql.end();
  }
});

/**
 * A relay whose NATS (a private server, `nats`) answers through a proxy that holds every answer
 * 100 ms (`proxy`), with 100 facts in its outbox (`ids`, in order); `firstBatch` starts a flush,
 * runs `during` beside it, and resolves once a batch has committed (its published rows leave the
 * outbox), with how long that took and how many rows it left.
 */
async function relayWithLateAcks() {
  const stack = new AsyncDisposableStack();
  const nats = stack.use(await startNatsServer({ jetStream: true }));
  const proxy = stack.use(laggingProxy(nats.port, 100));
  const db = stack.use(await testDatabase());
  const prefix = `lag${crypto.randomUUID().slice(0, 8)}`;
  const url = `nats://127.0.0.1:${proxy.port}`;
  const bus = await Bus.connect({ url, prefix, logger: createLogger("test", "error") });
  const sql = await openDatabase(db.url, { schema: "relay" });
  const relay = new FactRelay(sql, bus, recordingLogger());
  stack.defer(async () => {
    try {
      nats.freeze(false); // a test that failed while it was frozen
    } catch {
      // Stopped.
    }
    await relay.stop();
    await bus.close();
    await sql.end();
  });
  const waiting = async () => (await sql`select count(*)::int from outbox`)[0].count as number;
  await installOutbox(sql);
  await ensureFactStream(bus);
  const ids: string[] = [];
  for (let i = 0; i < 100; i++) {
    const id = crypto.randomUUID();
    ids.push(id);
    await sql`insert into outbox (id, subject, payload)
      values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id })})`;
  }
  const firstBatch = async (during: () => Promise<void> = async () => {}) => {
    const began = Date.now();
    const flushing = relay.flush();
    const meanwhile = during();
    let left = ids.length;
    while ((left = await waiting()) === ids.length && Date.now() - began < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const ms = Date.now() - began;
    await meanwhile;
    return { ms, left, flushing };
  };
  const stored = async () =>
    (await storedMessages(bus, facts.stream(prefix))).map((m) => m.json<{ id: string }>().id);
  const jsm = await jetstreamManager(bus.nc);
  const storedCount = async () => (await jsm.streams.info(facts.stream(prefix))).state.messages;
  return {
    nats,
    proxy,
    relay,
    ids,
    waiting,
    firstBatch,
    stored,
    storedCount,
    [Symbol.asyncDispose]: () => stack.disposeAsync(),
  };
}

// A batch holds its rows in an open transaction while it publishes them one after another, each
// once JetStream has stored the one before: Postgres ends a transaction silent for 15 s
// (DRAIN_HOLD_LIMIT), and a batch unanswered for 20 s is given up. So a batch starts no publish
// after PUBLISH_BUDGET_MS (5 s), and the rows it has not published wait for the next batch. With
// acks that come late (a slow link to NATS, a busy server), a batch without that bound held every
// row until all were published, and one whose facts took over 15 s was rolled back and published
// again, for as long as the acks stayed slow.
Deno.test("[facts] FactRelay gives back what a batch has not published within its budget while acks come late", async () => {
  await using r = await relayWithLateAcks();
  // 100 acks of at least 100 ms each: twice the budget.
  const { ms, left, flushing } = await r.firstBatch();
  assert.ok(ms < 8_000, `the first batch ended within its budget and one ack (${ms} ms)`);
  assert.ok(left > 0 && left < 100, `it gave back the rows it had not published (${left})`);
  r.proxy.lagMs = 0; // healed
  await flushing;
  assert.equal(await r.waiting(), 0, "every fact published once healed");
  assert.deepEqual(await r.stored(), r.ids, "each once, in the outbox order");
});

// Acks that stop coming (NATS frozen mid-batch): the publish under way gives up at its own
// timeout (5 s), so a batch ends within the budget and one timeout, before Postgres would end it,
// and the rows it did not publish stay. The fact on the wire at the freeze is stored once NATS
// runs again, and published again by the relay: its id (Nats-Msg-Id) makes that a duplicate
// JetStream drops (without it the stream held that fact twice).
Deno.test("[facts] FactRelay keeps the rows of a batch whose acks stop coming, and publishes each once after", async () => {
  await using r = await relayWithLateAcks();
  const freezeMidBatch = async () => {
    await eventually(async () => await r.storedCount() >= 5, 10_000, "the first facts stored");
    r.nats.freeze(true);
  };
  const { ms, left, flushing } = await r.firstBatch(freezeMidBatch);
  assert.ok(ms < 12_000, `the batch ended within its budget and a publish timeout (${ms} ms)`);
  assert.ok(left > 0 && left < 100, `it kept the rows it had not published (${left})`);
  await flushing;
  assert.equal(await r.waiting(), left, "nothing more left the outbox while NATS was frozen");
  r.nats.freeze(false);
  r.proxy.lagMs = 0;
  await eventually(
    async () => {
      await r.relay.flush();
      return await r.waiting() === 0;
    },
    20_000,
    "the outbox to empty once NATS is back",
  );
  assert.deepEqual(await r.stored(), r.ids, "each once, in the outbox order");
});

// Found following the README (2026-12-05): after `deno task start` was SIGKILLed, its embedded
// Postgres went down as the services stopped, and a catalog never exited. A drain that failed on
// the closed connection let stop() end the relay's connection without a bound, while a batch kicked
// meanwhile waited on that connection, which postgres.js kept reconnecting to a refused port.
Deno.test("[facts] FactRelay stop ends in time when Postgres goes away during it", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  const proxy = silentProxyTo(db.url);
  const sql = await openDatabase(db.url, { schema: "relay" });
  const relaySql = await openDatabase(proxy.url, { schema: "relay", max: 2 });
  const relay = new FactRelay(relaySql, tb.bus, recordingLogger());
  const record = async () => {
    const id = crypto.randomUUID();
    await sql`insert into outbox (id, subject, payload)
      values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id })})`;
  };
  const locker = await sql.reserve();
  try {
    await installOutbox(sql);
    await ensureFactStream(tb.bus);
    await record();
    await relay.flush(); // the relay's own connection is open
    await record();
    // The stop's last batch waits on the fact's row lock; a batch kicked meanwhile queues behind
    // it on the relay's connection.
    await locker`begin`;
    await locker`select seq from outbox for update`;
    const stopping = relay.stop();
    await eventually(
      async () => {
        const [{ waiting }] = await sql`select count(*)::int as waiting from pg_stat_activity
        where wait_event_type = 'Lock' and datname = current_database()`;
        return waiting === 1;
      },
      5_000,
      "the stop's batch waiting on the row lock",
    );
    relay.kick();
    // Postgres goes away: its connections close and new ones are refused.
    await proxy[Symbol.asyncDispose]();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      stopping.then(() => "stopped"),
      new Promise((resolve) => timer = setTimeout(resolve, 5_000, "still stopping after 5 s")),
    ]).finally(() => clearTimeout(timer));
    assert.equal(outcome, "stopped");
  } finally {
    await locker`rollback`.catch(() => {});
    locker.release();
    await deleteFactStream(tb.bus);
    await sql.end();
    await relaySql.end({ timeout: 0.1 });
  }
});

/** Records a fact straight into the outbox, as the relay reads it (no kick); returns its id. */
async function recordRaw(sql: Sql): Promise<string> {
  const id = crypto.randomUUID();
  await sql`insert into outbox (id, subject, payload)
    values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id })})`;
  return id;
}

/** A registered fact (changeWithFact checks it against its schema): an event topic. */
const topicFact = (id: string) => ({
  type: "catalog.event-topic.created" as const,
  actor: { id: "1", email: "a@example.com" },
  data: {
    id,
    name: `topic ${id}`,
    slug: `topic-${id}`,
    "system-image-url": null,
    "created-at": new Date(),
    "deleted-at": null,
  },
});

/** The ids of the facts the stream holds, oldest first. */
async function storedIds(bus: Bus): Promise<string[]> {
  const messages = await storedMessages(bus, facts.stream(bus.prefix));
  return messages.map((m) => m.json<{ id: string }>().id);
}

// Found by a mutation review: `more` reduced to `rows.length < locked` (a batch cut short by the
// byte bound) failed no test, yet a drain then ended after one batch of 200 however many facts
// waited, and flush() and stop() returned with facts still in the outbox. Every test flushed
// fewer than 200 facts, or flushed several times.
Deno.test("[facts] one flush publishes more facts than a batch takes, all of them, in order", async () => {
  await using system = await outboxRelay();
  const { sql, bus, relay } = system;
  // Small facts (the byte bound plays no part), recorded without a kick: the flush alone
  // publishes them, in batches of 200.
  const ids = [];
  for (let i = 0; i < 450; i++) ids.push(await recordRaw(sql));
  await relay.flush();
  const [{ count: left }] = await sql`select count(*)::int from outbox`;
  assert.equal(left, 0, "no fact stays in the outbox after one flush");
  assert.deepEqual(await storedIds(bus), ids, "each once, in the outbox order");
});

// Found by a mutation review: with changeWithFact's kick after the commit made a no-op, no test
// failed (each flushed, or ticked every 100 ms), yet facts then reached the stream only at the
// relay's next tick, not right after their change. The tick here is a minute away.
Deno.test("[facts] a fact committed through changeWithFact is published at once, before the relay's tick", async () => {
  await using system = await outboxRelay();
  const { sql, bus, relay } = system;
  relay.start(60_000);
  await changeWithFact(sql, relay, () => Promise.resolve("1"), topicFact);
  // A bound, generous for CI; without the kick the fact waits a minute.
  await eventually(async () => (await storedIds(bus)).length === 1, 1_000, "the fact");
});

// Found by a mutation review: without the re-kick (a kick that comes while a drain runs is kept,
// and runs once that drain ends) no test failed, yet a fact committed while a drain ran, after
// that drain had read the outbox, waited for the relay's next tick. Here the drain waits on a row
// lock the test holds while the fact commits: its read of the outbox cannot see that fact.
Deno.test("[facts] a fact committed while a drain runs is published once that drain ends", async () => {
  await using system = await outboxRelay();
  const { sql, bus, relay } = system;
  const locker = await sql.reserve();
  try {
    relay.start(60_000); // the tick is a minute away: only a kick publishes in time
    const first = await recordRaw(sql);
    await locker`begin`;
    await locker`select seq from outbox for update`;
    relay.kick();
    await eventually(
      async () => {
        const [{ waiting }] = await sql`select count(*)::int as waiting from pg_stat_activity
          where wait_event_type = 'Lock' and datname = current_database()`;
        return waiting === 1;
      },
      1_000, // well within the drain's lock wait (2 s)
      "the drain waiting on the row lock",
    );
    // Its kick comes while the drain runs.
    await changeWithFact(sql, relay, () => Promise.resolve("2"), topicFact);
    await locker`rollback`;
    await eventually(async () => (await storedIds(bus)).length === 2, 1_000, "both facts");
    const [, second] = await storedIds(bus);
    assert.deepEqual(await storedIds(bus), [first, second]);
    const [{ count: left }] = await sql`select count(*)::int from outbox`;
    assert.equal(left, 0);
  } finally {
    await locker`rollback`.catch(() => {});
    locker.release();
  }
});

// Found by a mutation review: flush() without waiting for the drain under way failed no test. On
// the relay's own connection (one, see `#connection`) its drain queues behind that one anyway; a
// relay on a pool not opened by openDatabase runs them side by side, and flush's drain, waiting on
// the rows the other holds while JetStream acks come late, gave up at its lock wait (2 s) and
// flush() resolved with those facts still in the outbox. Acks here take 100 ms each: the kicked
// drain holds its 40 rows 4 s.
Deno.test("[facts] a flush while a drain holds the outbox's rows resolves once they are published", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  await using proxy = laggingProxy(Number(new URL(tb.natsUrl).port), 100);
  const bus = await Bus.connect({
    url: `nats://127.0.0.1:${proxy.port}`,
    prefix: tb.prefix,
    logger: createLogger("test", "error"),
  });
  const sql = await openDatabase(db.url, { schema: "relay" });
  const pool = postgres(db.url, { connection: { search_path: "relay" }, onnotice: () => {} });
  const relay = new FactRelay(pool, bus, recordingLogger());
  try {
    await installOutbox(sql);
    await ensureFactStream(tb.bus);
    for (let i = 0; i < 40; i++) await recordRaw(sql);
    relay.kick();
    await eventually(
      async () => (await storedIds(tb.bus)).length > 0,
      5_000,
      "the drain under way",
    );
    const left = await relay.flush().then(async () =>
      (await sql`select count(*)::int from outbox`)[0].count
    );
    assert.equal(left, 0, "no fact stays in the outbox when flush resolves");
  } finally {
    proxy.lagMs = 0;
    await relay.stop();
    await bus.close();
    await deleteFactStream(tb.bus);
    await pool.end();
    await sql.end();
  }
});
