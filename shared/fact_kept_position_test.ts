import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { eventually } from "@testing/eventually.ts";
import { factBus } from "@testing/fact_bus.ts";
import { exampleFact } from "@testing/facts.ts";
import { backUpSchema } from "@testing/schema_backup.ts";
import { consumeFacts, type FactConsumer } from "./consumer.ts";
import { openDatabase, type Sql } from "./db.ts";
import { keptPositions } from "./fact_kept_position.ts";
import { createLogger } from "./log.ts";
import { type TestBus, testDatabase } from "./testing.ts";

const quiet = createLogger("test", "error");
const SCHEMA = "follower";

async function publishTopics(b: TestBus, numbers: number[]): Promise<void> {
  const js = jetstream(b.bus.nc);
  for (const n of numbers) {
    const fact = exampleFact("catalog.event-topic.created", { id: String(n) });
    await js.publish(b.bus.subject("facts.catalog.event-topic.created"), JSON.stringify(fact));
  }
}

/**
 * A follower as our services have them: a durable consumer that records each topic it is handed
 * in table `seen` of its schema, and keeps its position there. `handed` lists every topic handed
 * over, in order, replays included.
 */
async function follow(b: TestBus, sql: Sql, handed: number[]): Promise<FactConsumer> {
  return await consumeFacts(b.bus, {
    durable: "follower",
    subject: "facts.catalog.>",
    log: quiet,
    // Read often, so that the kept position leaves the facts settled behind it (a replay's start).
    floorReadMs: 50,
    keptIn: keptPositions(sql, quiet),
    handle: async (batch) => {
      for (const fact of batch) {
        handed.push(Number(fact.data.id));
        await sql`insert into seen (n) values (${Number(fact.data.id)}) on conflict do nothing`;
      }
    },
  });
}

async function seen(sql: Sql): Promise<number[]> {
  return (await sql<{ n: number }[]>`select n from seen order by n`).map((r) => r.n);
}

async function keptResumeAt(sql: Sql): Promise<number> {
  const [row] = await sql`select resume_at from fact_positions where consumer = 'follower'`;
  return Number(row?.resume_at ?? 0);
}

// Found by a backup-and-restore review (2026-12-06): a follower's database restored from a backup
// lacked the facts its durable consumer had settled since, and JetStream never handed them over
// again (a deleted event's discount codes stayed live for good) unless an operator removed the
// durable by hand. The position kept in the database now tells, and the consumer replays them.
Deno.test("[kept position] a follower whose database was restored from a backup gets the facts it lacks again", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  const sql = await openDatabase(db.url, { schema: SCHEMA, log: quiet });
  try {
    await sql`create table seen (n int primary key)`;
    const before: number[] = [];
    let consumer = await follow(b, sql, before);
    await publishTopics(b, [1, 2, 3, 4, 5]);
    await eventually(async () => (await seen(sql)).length === 5, 10_000, "topics 1-5 followed");
    await eventually(async () => await keptResumeAt(sql) === 6, 10_000, "position kept past 5");
    await using backup = await backUpSchema(db.url, SCHEMA);

    await publishTopics(b, [6, 7, 8]);
    await eventually(async () => (await seen(sql)).length === 8, 10_000, "topics 6-8 followed");
    await consumer.stop();
    await backup.restore();
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5], "the restored database lacks 6-8");

    const after: number[] = [];
    consumer = await follow(b, sql, after);
    await publishTopics(b, [9]);
    await eventually(async () => (await seen(sql)).length === 9, 10_000, "6-8 handed over again");
    await consumer.stop();
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(after, [6, 7, 8, 9], "from the kept position, in order, 9 after the replay");
  } finally {
    await sql.end();
  }
});

Deno.test("[kept position] a follower whose database is not behind hands nothing over again", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  const sql = await openDatabase(db.url, { schema: SCHEMA, log: quiet });
  try {
    await sql`create table seen (n int primary key)`;
    const first: number[] = [];
    let consumer = await follow(b, sql, first);
    await publishTopics(b, [1, 2, 3]);
    await eventually(async () => (await seen(sql)).length === 3, 10_000, "topics 1-3 followed");
    await consumer.stop();

    const second: number[] = [];
    consumer = await follow(b, sql, second);
    await publishTopics(b, [4]);
    await eventually(async () => (await seen(sql)).length === 4, 10_000, "topic 4 followed");
    await consumer.stop();
    assert.deepEqual(second, [4]);
  } finally {
    await sql.end();
  }
});
