import assert from "node:assert/strict";
import postgres from "postgres";
import { openDatabase, type Sql } from "./db.ts";
import { watchPool } from "./db_metrics.ts";
import { COLLECT_TIMEOUT_MS, type FamilySnapshot, metrics } from "./metrics.ts";
import { testBackends, testDatabase } from "./testing.ts";
import { holdTableLock } from "@testing/table_lock.ts";

/** The value of `name`'s series whose labels include `labels`, if it has one. */
function valueOf(
  families: FamilySnapshot[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.find((f) => f.name === name);
  const series = family?.series.find((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  return series?.value;
}

/** Waits until `count` statements wait for a lock on `table`. */
async function untilWaiting(observer: Sql, table: string, count: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const [row] = await observer`select count(*)::int as n from pg_locks
      where not granted and relation = ${table}::regclass`;
    if (row.n >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`Cannot saturate the pool: fewer than ${count} statements wait on ${table}`);
}

Deno.test("[db_metrics] watchPool reports a pool saturated behind a table lock as all active", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "shop", max: 2 });
  const observer = postgres(db.url, { max: 1, onnotice: () => {} });
  const unwatch = watchPool(sql);
  try {
    await sql`create table shop.items (id int)`;
    await using lock = await holdTableLock(db.url, "shop.items");
    const writes = [1, 2].map((id) => sql`insert into items (id) values (${id})`.execute());
    await untilWaiting(observer, "shop.items", 2);
    const began = performance.now();
    const families = await metrics.snapshot();
    assert.ok(performance.now() - began < COLLECT_TIMEOUT_MS, "the pool's read was not late");
    assert.equal(valueOf(families, "oe_db_pool_connections", { state: "active" }), 2);
    assert.equal(valueOf(families, "oe_db_pool_max"), 2);
    assert.equal(valueOf(families, "oe_metrics_collector_up", { collector: "db_pool" }), 1);
    await lock.release();
    await Promise.all(writes);
  } finally {
    unwatch();
    await observer.end();
    await sql.end();
  }
});

Deno.test("[db_metrics] watchPool is reported down while its database cannot be reached", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "shop", max: 2 });
  const unwatch = watchPool(sql);
  const admin = postgres((await testBackends()).databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const up = async () =>
      valueOf(await metrics.snapshot(), "oe_metrics_collector_up", { collector: "db_pool" });
    assert.equal(await up(), 1);
    // Gone under it: every connection is ended and a new one is refused (3D000).
    await admin`drop database ${admin(db.name)} with (force)`;
    assert.equal(await up(), 0);
  } finally {
    unwatch();
    await admin.end();
    await sql.end({ timeout: 0 });
  }
});
