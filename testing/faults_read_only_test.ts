/**
 * A database that takes no writes: after a failover a pool may reach the old primary, now a
 * standby (a DNS name or virtual IP that moved late), or an operator sets it read-only for
 * maintenance. Postgres then refuses each write with 25006 while reads work. Played here with the
 * test database's own `default_transaction_read_only` and its sessions ended, so the pool's new
 * ones start read-only (the shared server's settings are never touched).
 */
import assert from "node:assert/strict";
import { openDatabase, transaction, translateDbError } from "@shared/db.ts";
import { ServiceUnavailableError } from "@shared/errors.ts";
import { recordingLogger, testDatabase } from "@shared/testing.ts";
import { eventually } from "./eventually.ts";
import { setDatabaseReadOnly } from "./read_only.ts";
import { type CallResult, expectStatus, startTestSystem } from "./system.ts";

const READ_ONLY_DETAIL = /Cannot save now: the database takes no writes/;

Deno.test("[faults] a read-only database answers writes 503, serves reads, and heals", async () => {
  await using system = await startTestSystem();
  const admin = { token: system.admin.token };
  const before = await system.createTopic("Before");
  const topics = async () => (await system.sql`select count(*)::int as n from event_topics`)[0].n;
  const count = await topics();
  const write = () =>
    system.call("POST", "/v1/event-topics", {
      ...admin,
      body: { data: { type: "event-topic", attributes: { name: "During" } } },
    });
  await setDatabaseReadOnly(system.databaseUrl, true);
  // The first write after the sessions ended may find a closed connection (503 too).
  let refused: CallResult | undefined;
  await eventually(
    async () => READ_ONLY_DETAIL.test(JSON.stringify((refused = await write()).body)),
    5_000,
    "a write refused as read-only",
  );
  expectStatus(refused!, 503);
  const signedIn = await system.call("GET", `/v1/event-topics/${before}`, admin);
  expectStatus(signedIn, 200, "reads work");
  assert.equal(await topics(), count, "nothing written");

  await setDatabaseReadOnly(system.databaseUrl, false);
  await eventually(async () => (await write()).status === 201, 5_000, "writes taken again");
});

Deno.test("[faults] a read-only database is a 503 and a warning once a minute, not an error per write", async () => {
  await using db = await testDatabase();
  const log = recordingLogger();
  const sql = await openDatabase(db.url, { schema: "demo", log });
  try {
    await sql`create table things (id int)`;
    await setDatabaseReadOnly(db.url, true);
    const refusals: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      // As a store's change runs: the refusal is noted by the pool's watch, then translated.
      await transaction(sql, (tx) => tx`insert into things values (1)`).catch((error) => {
        refusals.push(translateDbError(error));
      });
    }
    // The first may find a connection the sessions' end closed: an outage, a 503 too.
    const readOnly = refusals.filter((error) =>
      error instanceof ServiceUnavailableError && READ_ONLY_DETAIL.test(error.message)
    );
    assert.ok(readOnly.length >= 3, `refused as read-only: ${readOnly.length} of 4`);
    const warned = log.lines.filter((line) => line.message.startsWith("Postgres refuses writes"));
    assert.equal(warned.length, 1, "one warning for the minute");
    assert.equal(warned[0].refused, 1);
    assert.equal(log.lines.filter((line) => line.level === "error").length, 0);
    const [{ n }] = await sql`select count(*)::int as n from things`;
    assert.equal(n, 0);
  } finally {
    await sql.end();
  }
});
