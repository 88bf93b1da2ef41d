/**
 * Two batches naming the same facts in other orders write their activities in one order (README,
 * "Concurrent writes Postgres refuses"): a fact re-published under another message id lands in
 * two batches, which two instances may write at once. The test's own session holds one fact's row
 * uncommitted, so that the two batches meet in the order that deadlocked.
 */
import assert from "node:assert/strict";
import { openDatabase, type Sql } from "@shared/db.ts";
import type { Fact } from "@shared/facts.ts";
import { testDatabase } from "@shared/testing.ts";
import { untilWaitingForLocks } from "@testing/table_lock.ts";
import { activityCount, makeFact, quiet } from "./_test_utils.ts";
import { applyAllFacts } from "./follow_all.ts";
import { migrateAudit, SCHEMA } from "./service.ts";

/** A fact whose id sorts as `prefix` says (ids are compared as text). */
function factWithId(prefix: string): Fact {
  return { ...makeFact(), id: `${prefix}0000000-0000-4000-8000-000000000000` };
}

Deno.test("[audit] two batches with the same facts in opposite orders both write: no deadlock", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: SCHEMA, max: 4 });
  const session = await sql.reserve();
  try {
    await migrateAudit(sql);
    const [a, c, held] = [factWithId("a"), factWithId("c"), factWithId("f")];
    await session`begin`;
    await applyAllFacts(session as unknown as Sql, [held], quiet);
    // The first writes a, then waits for the held row; the second writes c, then waits for a.
    const first = applyAllFacts(sql, [a, held, c], quiet);
    await untilWaitingForLocks(sql, { count: 1, what: "the first batch" });
    const second = applyAllFacts(sql, [c, a], quiet);
    await untilWaitingForLocks(sql, { count: 2, what: "both batches" });
    await session`rollback`;
    const results = await Promise.allSettled([first, second]);
    const failures = results.flatMap((r) => r.status === "rejected" ? [String(r.reason)] : []);
    assert.deepEqual(failures, []);
    assert.equal(await activityCount(sql), 3, "every fact written once");
  } finally {
    session.release();
    await sql.end();
  }
});

Deno.test("[audit] a batch's activities keep its order in their ids, written in fact id order", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: SCHEMA, max: 2 });
  try {
    await migrateAudit(sql);
    // The facts of one change share their millisecond: the log lists them by id.
    await applyAllFacts(sql, [factWithId("c"), factWithId("a"), factWithId("b")], quiet);
    const rows = await sql`select left(fact_id::text, 1) as f from activities order by id`;
    assert.deepEqual(rows.map((row) => row.f), ["c", "a", "b"]);
  } finally {
    await sql.end();
  }
});
