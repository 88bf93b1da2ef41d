import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { consumeFacts, type FactConsumer } from "./consumer.ts";
import { openDatabase, type Sql } from "./db.ts";
import { installFactLedger } from "./fact_ledger.ts";
import type { Fact } from "./facts.ts";
import { facts } from "./subjects.ts";
import { recordingLogger, type TestBus, testDatabase } from "./testing.ts";
import { eventually } from "@testing/eventually.ts";
import { factBus } from "@testing/fact_bus.ts";
import { exampleFact } from "@testing/facts.ts";

/** Consumers stopped leave their pulls' timers to NATS: not this test's to wait out. */
const unsanitized = { sanitizeOps: false, sanitizeResources: false };

const LATE = "handed over a fact the server counted as settled that no instance settled";

/** Topic `n` created, published on `b`'s prefix. */
async function publishTopics(b: TestBus, ns: number[]): Promise<void> {
  const js = jetstream(b.bus.nc);
  for (const n of ns) {
    const fact = exampleFact("catalog.event-topic.created", { id: String(n) });
    await js.publish(b.bus.subject("facts.catalog.event-topic.created"), JSON.stringify(fact));
  }
}

/** A database with the ledger's tables, and a pool on it. */
async function ledgerDatabase() {
  const db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "demo" });
  await installFactLedger(sql);
  return {
    sql,
    async [Symbol.asyncDispose]() {
      await sql.end();
      await db[Symbol.asyncDispose]();
    },
  };
}

/** A fact bus, a database with the ledger's tables, and what the instances handle and log. */
async function ledgerTest() {
  const b = await factBus({ ensureStream: true });
  const db = await ledgerDatabase();
  return {
    b,
    db,
    handled: [] as string[],
    log: recordingLogger(),
    async [Symbol.asyncDispose]() {
      await db[Symbol.asyncDispose]();
      await b[Symbol.asyncDispose]();
    },
  };
}

/** An instance of durable consumer "d" with a ledger, keeping the topic ids it handles. */
function instance(b: TestBus, sql: Sql, handled: string[], log = recordingLogger()) {
  return consumeFacts(b.bus, {
    durable: "d",
    subject: "facts.catalog.>",
    log,
    ledger: sql,
    reconcileMs: 150,
    handle: (batch: Fact[]) => {
      handled.push(...batch.map((fact) => fact.data.id as string));
      return Promise.resolve();
    },
  });
}

/**
 * What nats-server before 2.11 does after a consumer's leader change (nats-io/nats-server#6566):
 * the fact counts as delivered and settled, and no instance ever got it. Here another client
 * takes it from the durable and acknowledges it unhandled, which leaves the server in that state.
 */
async function settleUnhandled(b: TestBus): Promise<void> {
  const consumer = await jetstream(b.bus.nc).consumers.get(facts.stream(b.prefix), "d");
  const messages = await consumer.fetch({ max_messages: 1, expires: 2_000 });
  for await (const msg of messages) await msg.ackAck();
}

Deno.test({
  name: "[consumer] a fact the server settled that no instance handled is handed over late, once",
  ...unsanitized,
}, async () => {
  await using t = await ledgerTest();
  const { b, db, handled, log } = t;
  const stops: FactConsumer[] = [];
  try {
    const first = await instance(b, db.sql, handled, log);
    stops.push(first);
    await publishTopics(b, [1, 2, 3]);
    await eventually(() => handled.length === 3, 5_000, "the first facts");
    // The ledger's checks begin (its first rounds), then the instance goes.
    await eventually(
      async () => (await db.sql`select 1 from fact_ledger_checks`).length === 1,
      5_000,
      "the ledger's first check",
    );
    await first.stop();
    stops.length = 0;
    await publishTopics(b, [4]);
    await settleUnhandled(b);
    await publishTopics(b, [5]);
    stops.push(await instance(b, db.sql, handled, log));
    await eventually(() => handled.includes("4"), 10_000, "the skipped fact handed over");
    // A few more rounds: nothing else is handed over again.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.deepEqual([...handled].sort(), ["1", "2", "3", "4", "5"]);
    const late = log.lines.filter((line) => line.message === LATE);
    assert.equal(late.length, 1, "said once");
    assert.equal(late[0].sequence, 4);
    assert.equal(late[0].type, "catalog.event-topic.created");
    const [{ n }] = await db.sql`select count(*)::int as n from fact_ledger where seq <= 4`;
    assert.equal(n, 0, "what was checked is forgotten");
  } finally {
    for (const consumer of stops) await consumer.stop();
  }
});

Deno.test({
  name: "[consumer] instances sharing a durable write what each settled: nothing handed over late",
  ...unsanitized,
}, async () => {
  await using t = await ledgerTest();
  const { b, db, handled, log } = t;
  const instances = [
    await instance(b, db.sql, handled, log),
    await instance(b, db.sql, handled, log),
  ];
  try {
    const ids = Array.from({ length: 300 }, (_, i) => i + 1);
    for (let i = 0; i < ids.length; i += 30) await publishTopics(b, ids.slice(i, i + 30));
    await eventually(() => handled.length >= 300, 10_000, "every fact");
    // Rounds enough to check them all (each checks up to the floor the round before read).
    await eventually(
      async () => {
        const [row] = await db.sql`select checked_upto::int as upto from fact_ledger_checks`;
        return row?.upto === 300;
      },
      10_000,
      "every fact checked",
    );
    assert.equal(new Set(handled).size, 300);
    assert.equal(handled.length, 300, "none handed over twice");
    assert.deepEqual(log.lines.filter((line) => line.message === LATE), []);
  } finally {
    for (const consumer of instances) await consumer.stop();
  }
});
