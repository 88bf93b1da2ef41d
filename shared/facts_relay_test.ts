import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { openDatabase } from "./db.ts";
import { deleteFactStream, ensureFactStream, FactRelay, installOutbox } from "./facts.ts";
import type { Logger } from "./log.ts";
import { facts } from "./subjects.ts";
import { testBus, testDatabase } from "./testing.ts";

function recording(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const keep = (level: string) => (message: string) => void lines.push({ level, message });
  return {
    lines,
    debug: keep("debug"),
    info: keep("info"),
    warn: keep("warn"),
    error: keep("error"),
  };
}

Deno.test("[facts] FactRelay logs why JetStream refuses a fact once, and when it publishes again", async () => {
  await using db = await testDatabase();
  await using tb = await testBus();
  const sql = await openDatabase(db.url, { schema: "relay" });
  const log = recording();
  const relay = new FactRelay(sql, tb.bus, log);
  try {
    await installOutbox(sql);
    // Written as the outbox holds it (the relay does not read the fact inside).
    const id = crypto.randomUUID();
    await sql`insert into outbox (id, subject, payload)
      values (${id}, 'facts.catalog.event-topic.created', ${sql.json({ id })})`;

    // No stream yet: every attempt fails, the cause is logged once.
    for (let i = 0; i < 3; i++) await relay.flush();
    const stream = facts.stream(tb.prefix);
    assert.deepEqual(log.lines, [{
      level: "warn",
      message: `cannot publish facts yet (stream ${stream} does not exist); will retry`,
    }]);
    const [{ count: waiting }] = await sql`select count(*)::int from outbox`;
    assert.equal(waiting, 1, "the fact stays in the outbox");

    await ensureFactStream(tb.bus);
    await relay.flush();
    assert.deepEqual(log.lines.at(-1), { level: "info", message: "publishing facts again" });
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
