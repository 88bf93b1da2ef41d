/**
 * A failover without a virtual IP: DATABASE_URL lists the primary and its standby
 * (`postgres://...@standby:5432,primary:5432/open_event`), and a pool connects to whichever takes
 * writes (shared/db.ts sets postgres.js's `target_session_attrs` to `primary` for a URL of several
 * hosts). Here the standby is listed first, the primary is killed and the standby promoted, as
 * an operator's failover tool would.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { ensureDatabase, openDatabase, transaction } from "@shared/db.ts";
import { recordingLogger } from "@shared/testing.ts";
import { eventually, within } from "./eventually.ts";
import { startPostgresServer, startStandby } from "./postgres_server.ts";

/** A write as a service's change makes one: its time, and its error code if it failed. */
async function timedWrite(sql: postgres.Sql, n: number) {
  const began = performance.now();
  try {
    await transaction(sql, (tx) => tx`insert into notes values (${n})`);
    return { ms: performance.now() - began, code: undefined };
  } catch (error) {
    return { ms: performance.now() - began, code: (error as { code?: string }).code ?? "?" };
  }
}

// Unset, the pool asks for the primary; `read-write` is libpq's other way to ask for a writable
// server (the vendored driver took a Postgres 14+ standby for one: vendor/postgres/README.md).
for (const attrs of ["", "?target_session_attrs=read-write"]) {
  Deno.test({
    name: `[faults] a pool given the primary and its standby${attrs} writes on the primary and ` +
      "follows a failover",
    sanitizeOps: false,
    sanitizeResources: false,
  }, () => failover(attrs));
}

async function failover(attrs: string): Promise<void> {
  await using primary = await startPostgresServer();
  await using standby = await startStandby(primary);
  const url = `postgres://postgres@127.0.0.1:${standby.port},127.0.0.1:${primary.port}/open_event` +
    attrs;
  // Both servers hold the database, as in a running cluster (a host missing it refuses at once).
  await ensureDatabase(url);
  await caughtUp(standby.port, "select 1");
  const sql = await openDatabase(url, { schema: "demo", log: recordingLogger() });
  try {
    await sql`create table notes (n int)`;
    const places = await Promise.all(
      Array.from({ length: 8 }, () => sql`select pg_is_in_recovery() as standby`),
    );
    assert.ok(places.every(([row]) => row.standby === false), "every connection on the primary");
    assert.equal((await timedWrite(sql, 1)).code, undefined);
    await caughtUp(standby.port, "select count(*) from demo.notes");

    await primary.kill();
    // Meanwhile writes fail, each within about the pool's connect timeout (1 s), none hangs.
    const during = [await timedWrite(sql, 2), await timedWrite(sql, 3)];
    assert.ok(during.every((write) => write.code !== undefined), JSON.stringify(during));
    assert.ok(during.every((write) => write.ms < 2_500), JSON.stringify(during));

    await within(30_000, "promotion", standby.promote());
    const promotedAt = performance.now();
    await eventually(async () => (await timedWrite(sql, 4)).code === undefined, 10_000, "a write");
    const healedMs = performance.now() - promotedAt;
    const [{ standby: onStandby }] = await sql`select pg_is_in_recovery() as standby`;
    assert.equal(onStandby, false, "writing on the promoted standby");
    // 22-31 ms here (README "Postgres failover"); a pool waiting out a backoff took 10-14 s.
    assert.ok(healedMs < 3_000, `first write ${healedMs} ms after the promotion`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Waits until the standby at `port` answers `statement` (it replays the primary's changes). */
async function caughtUp(port: number, statement: string): Promise<void> {
  const standby = postgres(`postgres://postgres@127.0.0.1:${port}/open_event`, {
    max: 1,
    onnotice: () => {},
  });
  try {
    await eventually(
      () => standby.unsafe(statement).then(() => true, () => false),
      10_000,
      `the standby answering ${statement}`,
    );
  } finally {
    await standby.end({ timeout: 1 });
  }
}

// The driver passed over every Postgres 14+ hot standby for `read-only` (vendor/postgres/README.md).
Deno.test({
  name: "[faults] a URL of several hosts asking for read-only lands on the standby",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using primary = await startPostgresServer();
  await using standby = await startStandby(primary);
  const url = `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/postgres` +
    "?target_session_attrs=read-only";
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    const [{ standby: onStandby }] = await sql`select pg_is_in_recovery() as standby`;
    assert.equal(onStandby, true);
  } finally {
    await sql.end({ timeout: 1 });
  }
});
