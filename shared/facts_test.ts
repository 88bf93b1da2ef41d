import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { openDatabase } from "./db.ts";
import {
  changeWithFact,
  deleteFactStream,
  ensureFactStream,
  FactRelay,
  factSchema,
  installOutbox,
  recordFact,
} from "./facts.ts";
import { createLogger } from "./log.ts";
import { testBus, testDatabase } from "./testing.ts";

const quiet = createLogger("test", "error");

async function setUp() {
  const db = await testDatabase();
  const b = await testBus();
  const sql = await openDatabase(db.url, { schema: "demo" });
  await installOutbox(sql);
  await sql`create table things (id serial primary key, name text not null unique)`;
  const stream = await ensureFactStream(b.bus);
  const relay = new FactRelay(sql, b.bus, quiet);
  return {
    sql,
    bus: b.bus,
    stream,
    relay,
    async [Symbol.asyncDispose]() {
      await relay.stop();
      await deleteFactStream(b.bus);
      await sql.end();
      await b[Symbol.asyncDispose]();
      await db[Symbol.asyncDispose]();
    },
  };
}

async function streamMessages(t: Awaited<ReturnType<typeof setUp>>) {
  const jsm = await jetstreamManager(t.bus.nc);
  return (await jsm.streams.info(t.stream)).state.messages;
}

// A registered fact (recordFact refuses others): the "things" stand in for event topics.
const thingFact = (name: string, id: string) => ({
  service: "catalog",
  type: "event-topic",
  verb: "created",
  actor: { id: "1", email: "a@example.com" },
  resource: { type: "event-topic", id },
  data: { name },
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
  const fact = factSchema.parse(msg!.json());
  assert.equal(fact.resource.id, String(row.id));
  assert.equal(msg!.subject, t.bus.subject("facts.catalog.event-topic.created"));
  assert.equal((await t.sql`select count(*)::int as n from outbox`)[0].n, 0);
});

Deno.test("[facts] a failed change leaves neither the row nor its fact", async () => {
  await using t = await setUp();
  await t.sql`insert into things (name) values ('taken')`;
  await assert.rejects(changeWithFact(
    t.sql,
    t.relay,
    async (tx) => (await tx`insert into things (name) values ('taken') returning *`)[0],
    (row) => thingFact(row.name, String(row.id)),
  ));
  await t.relay.flush();
  assert.equal(await streamMessages(t), 0);
  assert.equal((await t.sql`select count(*)::int as n from things`)[0].n, 1);
});

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

Deno.test("[facts] a re-published fact is de-duplicated by its message id", async () => {
  await using t = await setUp();
  const fact = await t.sql.begin((tx) => recordFact(tx, thingFact("dup", "8")));
  await t.relay.flush();
  const js = jetstream(t.bus.nc);
  const ack = await js.publish(t.bus.subject(fact.subject), JSON.stringify(fact), {
    msgID: fact.id,
  });
  assert.equal(ack.duplicate, true);
  assert.equal(await streamMessages(t), 1);
});
