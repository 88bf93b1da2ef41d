import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import postgres from "postgres";
import { openDatabase, type Sql } from "./db.ts";
import { withDeadline } from "./deadline.ts";
import { GatewayTimeoutError, PayloadTooLargeError } from "./errors.ts";
import { changeWithFact, migrateWithOutbox, parseFact, recordFact } from "./facts.ts";
import { deleteFactStream, ensureFactStream, ensureStream } from "./fact_streams.ts";
import { FactRelay } from "./fact_relay.ts";
import { createLogger } from "./log.ts";
import { type FamilySnapshot, metrics } from "./metrics.ts";
import { testBackends, testBus, testDatabase } from "./testing.ts";
import { Bus } from "./bus.ts";
import { holdTableLock, untilWaitingForLocks } from "@testing/table_lock.ts";
import { outboxRelay } from "@testing/outbox_relay.ts";

const quiet = createLogger("test", "error");

/** The outbox and its relay, with a table of things to change beside the facts. */
async function setUp(max = 10) {
  const system = await outboxRelay({ schema: "demo", max, logger: quiet });
  await system.sql`create table things (id serial primary key, name text not null unique)`;
  return system;
}

async function streamMessages(t: Awaited<ReturnType<typeof setUp>>) {
  const jsm = await jetstreamManager(t.bus.nc);
  return (await jsm.streams.info(t.stream)).state.messages;
}

// A registered fact (recordFact refuses others): the "things" stand in for event topics.
const thingFact = (name: string, id: string) => ({
  type: "catalog.event-topic.created" as const,
  actor: { id: "1", email: "a@example.com" },
  data: {
    id,
    name,
    slug: name,
    "system-image-url": null,
    "created-at": new Date(),
    "deleted-at": null,
  },
});

Deno.test("[facts] a committed change publishes exactly one valid fact", async () => {
  await using t = await setUp();
  const row = await changeWithFact(
    t.sql,
    t.relay,
    async (tx) => (await tx`insert into things (name) values ('a') returning *`)[0],
    (row) => thingFact(row.name, String(row.id)),
  );
  await t.relay.flush();
  assert.equal(await streamMessages(t), 1);
  const jsm = await jetstreamManager(t.bus.nc);
  const msg = await jsm.streams.getMessage(t.stream, { seq: 1 });
  const read = parseFact(msg!.json());
  assert.ok("fact" in read, "a valid fact");
  const { fact } = read;
  assert.equal(fact.specversion, "1.0");
  assert.equal(fact.type, "catalog.event-topic.created");
  assert.equal(fact.source, "catalog");
  assert.equal(fact.subject, `/v1/event-topics/${row.id}`);
  assert.equal(fact.datacontenttype, "application/json");
  assert.equal(fact.actorid, "1");
  assert.equal(fact.actoremail, "a@example.com");
  assert.equal(fact.data.id, String(row.id));
  assert.equal(msg!.subject, t.bus.subject("facts.catalog.event-topic.created"));
  assert.equal(msg!.header.get("Nats-Msg-Id"), fact.id);
  assert.equal(msg!.header.get("content-type"), "application/cloudevents+json; charset=utf-8");
  assert.equal((await t.sql`select count(*)::int as n from outbox`)[0].n, 0);
});

Deno.test("[facts] the facts of one change share its instant", async () => {
  await using t = await setUp();
  // Enough facts that building them spans several milliseconds.
  const count = 400;
  await changeWithFact(
    t.sql,
    t.relay,
    async (tx) => (await tx`insert into things (name) values ('a') returning *`)[0],
    (row) => Array.from({ length: count }, (_, i) => thingFact(`${row.name}${i}`, String(i + 1))),
  );
  await t.relay.flush();
  assert.equal(await streamMessages(t), count);
  const jsm = await jetstreamManager(t.bus.nc);
  const timeOf = async (seq: number) =>
    (await jsm.streams.getMessage(t.stream, { seq }))!.json<{ time: string }>().time;
  assert.equal(await timeOf(count), await timeOf(1));
});

Deno.test("[facts] a failed change leaves neither the row nor its fact", async () => {
  await using t = await setUp();
  await t.sql`insert into things (name) values ('taken')`;
  // The change's own failure (the unique name), not one before it ran.
  await assert.rejects(
    changeWithFact(
      t.sql,
      t.relay,
      async (tx) => (await tx`insert into things (name) values ('taken') returning *`)[0],
      (row) => thingFact(row.name, String(row.id)),
    ),
    { code: "23505" },
  );
  await t.relay.flush();
  assert.equal(await streamMessages(t), 0);
  assert.equal((await t.sql`select count(*)::int as n from things`)[0].n, 1);
});

// Found by a review: such a change committed, and its fact could never be published (NATS
// refuses a message over its max_payload): subscribers never learnt of the change.
Deno.test("[facts] a change whose fact is larger than NATS carries fails with 413, nothing committed", async () => {
  await using t = await setUp();
  const huge = "x".repeat(t.bus.nc.info!.max_payload);
  await assert.rejects(
    changeWithFact(
      t.sql,
      t.relay,
      async (tx) => (await tx`insert into things (name) values ('huge') returning *`)[0],
      (row) => thingFact(huge, String(row.id)),
    ),
    (error) => error instanceof PayloadTooLargeError && /Cannot record fact/.test(error.message),
  );
  assert.equal((await t.sql`select count(*)::int as n from things`)[0].n, 0, "rolled back");
  assert.equal((await t.sql`select count(*)::int as n from outbox`)[0].n, 0);
});

Deno.test("[facts] a fact Postgres refuses fails the write, and nothing of it is committed", async () => {
  await using t = await setUp();
  // The outbox refuses the second of two facts for real. (Were its insert sent with the COMMIT,
  // Postgres would answer that COMMIT with ROLLBACK, no error, and the write would pass for done.)
  await t.sql`create function refuse_fact() returns trigger language plpgsql as $$
    begin
      if new.payload->'data'->>'name' = 'refused' then raise exception 'fact refused'; end if;
      return new;
    end $$`;
  await t.sql`create trigger refuse_fact before insert on outbox
    for each row execute function refuse_fact()`;
  const write = (name: string) =>
    changeWithFact(
      t.sql,
      t.relay,
      async (tx) => (await tx`insert into things (name) values (${name}) returning *`)[0],
      (row) => [thingFact("kept", "1"), thingFact(row.name, String(row.id))],
    );
  await assert.rejects(write("refused"), /fact refused/);
  assert.equal((await t.sql`select count(*)::int as n from things`)[0].n, 0);
  assert.equal((await t.sql`select count(*)::int as n from outbox`)[0].n, 0);
  // The next write on the pool is not troubled by the aborted one.
  await write("fine");
  await t.relay.flush();
  assert.deepEqual((await t.sql`select name from things`).map((r) => r.name), ["fine"]);
  assert.equal(await streamMessages(t), 2);
});

Deno.test("[facts] a fact insert held up past the deadline fails the write, which is not committed later", async () => {
  await using t = await setUp();
  // Another session holds the outbox (DDL during an upgrade does) until after the deadline; the
  // change itself takes half the time left, so the fact's insert, which the statement timeout set
  // at the start bounds only by the whole time left, waits past the deadline. The requester
  // answers 504 at the deadline: the write must not commit once the lock goes.
  await using locker = await lockOutboxFor(t.sql, 800);
  const deadline = Date.now() + 600;
  await assert.rejects(
    withDeadline(deadline, () =>
      changeWithFact(
        t.sql,
        t.relay,
        async (tx) => {
          await tx`select pg_sleep(0.3)`;
          return (await tx`insert into things (name) values ('late') returning *`)[0];
        },
        (row) => thingFact(row.name, String(row.id)),
      )),
    (error: Error) =>
      error instanceof GatewayTimeoutError || /statement timeout/.test(error.message),
  );
  await locker.released;
  assert.ok(Date.now() >= deadline);
  assert.equal((await t.sql`select count(*)::int as n from things`)[0].n, 0);
  assert.equal((await t.sql`select count(*)::int as n from outbox`)[0].n, 0);
});

/** Locks the outbox from a connection of its own for `ms`; `released` once it let go. */
async function lockOutboxFor(sql: Sql, ms: number) {
  const locked = Promise.withResolvers<void>();
  const released = sql.begin(async (tx) => {
    await tx`lock table outbox in share mode`;
    locked.resolve();
    await tx`select pg_sleep(${ms / 1000})`;
  });
  released.catch(locked.reject);
  await locked.promise;
  return { released, [Symbol.asyncDispose]: () => released.then(() => {}, () => {}) };
}

Deno.test("[facts] facts recorded while NATS was unreachable are published later, once", async () => {
  await using t = await setUp();
  // Recorded but never kicked: as if the process died right after commit.
  await t.sql.begin((tx) => recordFact(tx, thingFact("late", "7")));
  assert.equal(await streamMessages(t), 0);
  const other = new FactRelay(t.sql, t.bus, quiet);
  await other.flush();
  await t.relay.flush();
  assert.equal(await streamMessages(t), 1);
});

Deno.test("[facts] relays of several instances publish facts in the order they were recorded", async () => {
  await using t = await setUp();
  // "first" is in the hands of another instance's relay (its rows locked while it publishes)
  // when this instance's relay is kicked for "second", recorded after it.
  await t.sql.begin((tx) => recordFact(tx, thingFact("first", "1")));
  await t.sql.begin((tx) => recordFact(tx, thingFact("second", "2")));
  const locked = Promise.withResolvers<void>();
  const otherRelay = Promise.withResolvers<void>();
  const holding = t.sql.begin(async (tx) => {
    await tx`select seq from outbox order by seq limit 1 for update`;
    locked.resolve();
    await otherRelay.promise;
  });
  holding.catch(locked.reject);
  await locked.promise;
  const draining = t.relay.flush();
  // This relay has met the held row (a fixed pause let a slow relay arrive after the row was let
  // go, and the order was right for want of any overlap). One that skips it never waits here.
  try {
    await untilWaitingForLocks(t.sql, { count: 1, what: "this instance's relay" });
  } finally {
    otherRelay.resolve();
  }
  await holding;
  await draining;
  const jsm = await jetstreamManager(t.bus.nc);
  const names = [];
  for (let seq = 1; seq <= await streamMessages(t); seq++) {
    const read = parseFact((await jsm.streams.getMessage(t.stream, { seq }))!.json());
    assert.ok("fact" in read);
    names.push((read.fact.data as { name: string }).name);
  }
  // Skipping the locked row published "second" first: a subscriber taking the last fact of a
  // resource as its state would have kept the older one (a review saw it with two catalogs).
  assert.deepEqual(names, ["first", "second"]);
});

Deno.test("[facts] a relay waits 2 s at most for rows another holds, then tries again later", async () => {
  await using t = await setUp();
  await t.sql.begin((tx) => recordFact(tx, thingFact("held", "1")));
  const locked = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  // A drain that does not let go (a frozen instance's, before Postgres ends its session).
  const holding = t.sql.begin(async (tx) => {
    await tx`select seq from outbox for update`;
    locked.resolve();
    await release.promise;
  });
  holding.catch(locked.reject);
  await locked.promise;
  // Another instance publishing is no failure to warn about.
  const warned: string[] = [];
  const relay = new FactRelay(t.sql, t.bus, { ...quiet, warn: (message) => warned.push(message) });
  const started = performance.now();
  const flushed = relay.flush();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    flushed.then(() => "gave up"),
    new Promise((resolve) => timer = setTimeout(resolve, 6_000, "still waiting")),
  ]);
  clearTimeout(timer);
  const waitedMs = performance.now() - started;
  release.resolve();
  await holding;
  await flushed;
  assert.equal(outcome, "gave up");
  assert.ok(waitedMs >= 1_900 && waitedMs < 3_500, `gave up after ${Math.round(waitedMs)} ms`);
  assert.deepEqual(warned, []);
  await relay.flush();
  assert.equal(await streamMessages(t), 1, "published once released");
});

Deno.test("[facts] a re-published fact is de-duplicated by its message id", async () => {
  await using t = await setUp();
  const fact = await t.sql.begin((tx) => recordFact(tx, thingFact("dup", "8")));
  await t.relay.flush();
  const js = jetstream(t.bus.nc);
  const ack = await js.publish(t.bus.subject(`facts.${fact.type}`), JSON.stringify(fact), {
    msgID: fact.id,
  });
  assert.equal(ack.duplicate, true);
  assert.equal(await streamMessages(t), 1);
});

Deno.test("[facts] a change whose fact breaks its schema fails with it, in one transaction", async (t) => {
  await using s = await setUp();
  const cases: [string, (name: string, id: string) => unknown][] = [
    ["a required field missing", (name, id) => {
      const { data: { slug: _, ...data }, ...rest } = thingFact(name, id);
      return { ...rest, data };
    }],
    ["a field of the wrong type", (name, id) => {
      const fact = thingFact(name, id);
      return { ...fact, data: { ...fact.data, "deleted-at": 5 } };
    }],
    ["a type the registry does not know", (name, id) => ({
      ...thingFact(name, id),
      type: "catalog.event-topic.renamed",
    })],
  ];
  for (const [what, make] of cases) {
    await t.step(what, async () => {
      await assert.rejects(
        changeWithFact(
          s.sql,
          s.relay,
          async (tx) => (await tx`insert into things (name) values (${what}) returning *`)[0],
          // A fact the catalog refuses, on purpose: its type is not a NewFact.
          (row) => make(row.name, String(row.id)) as never,
        ),
        /Cannot record fact/,
      );
      const [{ n }] = await s.sql`select count(*)::int as n from things where name = ${what}`;
      assert.equal(n, 0, "the change was rolled back");
    });
  }
  assert.equal((await s.sql`select count(*)::int as n from outbox`)[0].n, 0);
  await s.relay.flush();
  assert.equal(await streamMessages(s), 0);
});

Deno.test("[facts] only what the schema names is published (no column names, no secrets)", async () => {
  await using t = await setUp();
  const fact = thingFact("extra", "9");
  const recorded = await t.sql.begin((tx) =>
    recordFact(tx, { ...fact, data: { ...fact.data, password_hash: "x", event_topic_id: 1 } })
  );
  assert.deepEqual(Object.keys(recorded.data).sort(), Object.keys(fact.data).sort());
  assert.equal(recorded.data["created-at"], fact.data["created-at"].toISOString());
});

Deno.test("instances starting at once on a fresh database all migrate, none trips on another", async () => {
  await using db = await testDatabase();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/0001_things.sql`,
      "create table things (id serial primary key);",
    );
    const pools = await Promise.all(
      Array.from({ length: 4 }, () => openDatabase(db.url, { schema: "demo", max: 1 })),
    );
    try {
      const runs = await Promise.allSettled(
        pools.map((sql) =>
          migrateWithOutbox(sql, { schema: "demo", dir: new URL(`file://${dir}/`) })
        ),
      );
      assert.deepEqual(runs.map((run) => run.status), Array(4).fill("fulfilled"));
      const applied = runs.flatMap((run) => run.status === "fulfilled" ? run.value : []);
      assert.deepEqual(applied, ["0001_things.sql"], "each migration applied once");
      const [{ count }] =
        await pools[0]`select count(*)::int as count from information_schema.tables
        where table_schema = 'demo' and table_name in ('outbox', 'idempotency_keys', 'things')`;
      assert.equal(count, 3);
    } finally {
      await Promise.all(pools.map((sql) => sql.end()));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The value of `name`'s first series whose labels include `labels`, if it has one. */
function gauge(families: FamilySnapshot[], name: string, labels: Record<string, string> = {}) {
  const series = families.find((f) => f.name === name)?.series;
  return series?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

Deno.test("[facts] the outbox backlog is read while every pool connection waits on a lock", async () => {
  await using t = await setUp(2);
  t.relay.start(60_000); // reports the backlog; publishes only when told to here
  await t.sql.begin((tx) => recordFact(tx, thingFact("waiting", "1")));
  {
    await using lock = await holdTableLock(t.databaseUrl, "demo.things");
    const writes = ["a", "b"].map((name) =>
      t.sql`insert into things (name) values (${name})`.execute()
    );
    const observer = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
    for (let waiting = 0; waiting < 2; await new Promise((resolve) => setTimeout(resolve, 20))) {
      [{ waiting }] = await observer`select count(*)::int as waiting from pg_locks
        where not granted and relation = 'demo.things'::regclass`;
    }
    await observer.end();
    const families = await metrics.snapshot();
    assert.equal(gauge(families, "oe_outbox_backlog"), 1);
    assert.equal(gauge(families, "oe_metrics_collector_up", { collector: "outbox" }), 1);
    await lock.release();
    await Promise.all(writes);
  }
});

Deno.test("[facts] a prefix whose stream name another prefix has refuses to start, and leaves that stream alone", async () => {
  // "oe.eu" and "oe_eu" (or "oe" and "OE") both name the stream OE_EU_FACTS. Two systems sharing
  // a NATS with such prefixes: the second one's start took the first one's stream over (its
  // subjects replaced), so the first system's facts no longer had a stream to go to.
  const base = `t${crypto.randomUUID().slice(0, 8)}`;
  await using first = await testBus(`${base}.eu`);
  await using second = await testBus(`${base}_eu`);
  const stream = await ensureFactStream(first.bus);
  try {
    await assert.rejects(
      () => ensureFactStream(second.bus),
      (error: Error) => error.message.includes(stream) && error.message.includes(`${base}.eu`),
    );
    const jsm = await jetstreamManager(first.bus.nc);
    assert.deepEqual((await jsm.streams.info(stream)).config.subjects, [`${base}.eu.facts.>`]);
    // The first system's facts still have their stream.
    const ack = await jetstream(first.bus.nc).publish(
      `${base}.eu.facts.catalog.event-topic.created`,
      "{}",
    );
    assert.equal(ack.stream, stream);
  } finally {
    await deleteFactStream(first.bus);
  }
});

// Found by an operator review (2026-12-06): a process started without the FACTS_REPLICAS of the
// others took the shared stream from 3 replicas down to 1 without a word.
Deno.test("[facts] ensureStream says when it changes an existing stream's settings", async () => {
  await using b = await testBus();
  const warnings: [string, Record<string, unknown> | undefined][] = [];
  const quiet = createLogger("test", "error");
  const logger = {
    ...quiet,
    warn: (message: string, fields?: Record<string, unknown>) => {
      warnings.push([message, fields]);
    },
  };
  const { natsUrl } = await testBackends();
  const other = await Bus.connect({ url: natsUrl, prefix: b.prefix, logger });
  const name = `${b.prefix.toUpperCase()}_CHANGED`;
  const wanted = (replicas: number, days: number) => ({
    name,
    subjects: [b.bus.subject("changed.>")],
    num_replicas: replicas,
    max_age: days * 24 * 3600 * 1e9,
  });
  const jsm = await jetstreamManager(b.bus.nc);
  try {
    await ensureStream(b.bus, wanted(1, 1));
    await ensureStream(other, wanted(1, 1));
    assert.equal(warnings.length, 0, "the same settings change nothing and say nothing");
    await ensureStream(other, wanted(1, 2));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0][1]?.stream, name);
    assert.deepEqual(warnings[0][1]?.changes, {
      max_age: `${wanted(1, 1).max_age} -> ${wanted(1, 2).max_age}`,
    });
  } finally {
    await jsm.streams.delete(name).catch(() => {});
    await other.close();
  }
});

Deno.test("[facts] ensureStream that loses the race to add the stream still brings it to its settings", async () => {
  // Both ask on one connection, so the server meets both "is it there?" before either add: the
  // second add fails (other settings), and its caller found the stream made and left it as the
  // first made it. The same path serves a "stream not found" from a cluster member still making
  // a stream that exists (see openFactStream).
  await using b = await testBus();
  const name = `${b.prefix.toUpperCase()}_RACE`;
  const wanted = (days: number) => ({
    name,
    subjects: [b.bus.subject("race.>")],
    num_replicas: 1,
    max_age: days * 24 * 3600 * 1e9,
  });
  const jsm = await jetstreamManager(b.bus.nc);
  try {
    const [, second] = await Promise.all([
      ensureStream(b.bus, wanted(1)),
      ensureStream(b.bus, wanted(2)),
    ]);
    assert.equal(second.config.max_age, wanted(2).max_age, "its answer has its settings");
    assert.equal((await jsm.streams.info(name)).config.max_age, wanted(2).max_age);
  } finally {
    await jsm.streams.delete(name).catch(() => {});
  }
});
