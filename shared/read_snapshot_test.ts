/**
 * The snapshot arithmetic, and the check on the real Postgres: a resource another transaction
 * changed after a read's snapshot refuses the write; one changed before it, never changed, or
 * changed by nobody since, does not.
 */
import assert from "node:assert/strict";
import { openDatabase } from "./db.ts";
import { ApiError } from "./errors.ts";
import {
  type ChangedResource,
  changedSince,
  installResourceChanges,
  noteChanged,
  parseSnapshot,
  refuseChangedSince,
  targetsOf,
  widenXid,
} from "./read_snapshot.ts";
import { testDatabase } from "./testing.ts";

Deno.test("[read snapshot] a transaction counts as changed after a snapshot unless it had ended", () => {
  const snapshot = parseSnapshot("100:105:101,103");
  assert.deepEqual([...snapshot.running], [101n, 103n]);
  assert.equal(changedSince(snapshot, 99n), false, "below xmin: ended before");
  assert.equal(changedSince(snapshot, 102n), false, "between, not running: ended before");
  assert.equal(changedSince(snapshot, 101n), true, "running when it was taken");
  assert.equal(changedSince(snapshot, 105n), true, "at xmax: began after");
  assert.equal(changedSince(parseSnapshot("7:7:"), 7n), true);
});

Deno.test("[read snapshot] a row's 32-bit xmin is widened to the latest id with those bits", () => {
  const epoch = 3n << 32n;
  assert.equal(widenXid(500n, epoch + 900n), epoch + 500n);
  assert.equal(widenXid(4_294_967_000n, epoch + 10n), epoch - 296n, "from before the wrap");
  assert.equal(widenXid(900n, epoch + 900n), epoch + 900n, "the current transaction itself");
  assert.equal(widenXid(2n, epoch + 900n), 0n, "frozen: older than anything");
});

Deno.test("[read snapshot] a write is about its path's type, or everything it announces", () => {
  const code = { type: "discount-code", id: "5" };
  const ticket = { type: "ticket", id: "9" };
  assert.deepEqual(targetsOf("/v1/discount-codes/5/relationships/tickets", [ticket, code]), [code]);
  assert.deepEqual(targetsOf("/v1/users-events-roles/3", [ticket]), [ticket]);
});

Deno.test("[read snapshot] the check refuses exactly the changes its snapshot did not see", async (t) => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "snapshots", max: 4 });
  try {
    await installResourceChanges(sql);
    const event = { type: "event", id: "1" };
    const snapshotNow = async () =>
      (await sql<{ s: string }[]>`select pg_current_snapshot()::text as s`)[0].s;
    const change = (resources: ChangedResource[] = [event]) =>
      sql.begin((tx) => noteChanged(tx, resources));
    const check = (snapshot: string, targets = [event]) =>
      sql.begin((tx) => refuseChangedSince(tx, { snapshot, header: "If-Match" }, targets));

    await t.step("never changed, or changed before the snapshot: goes ahead", async () => {
      await check(await snapshotNow());
      await change();
      await check(await snapshotNow());
    });
    await t.step("changed after the snapshot: 412 naming the header", async () => {
      const before = await snapshotNow();
      await change();
      await assert.rejects(check(before), (error: ApiError) => {
        assert.equal(error.status, 412);
        assert.equal(error.toObjects()[0].source?.header, "If-Match");
        return true;
      });
      await check(await snapshotNow());
    });
    await t.step("another resource changed after it: goes ahead", async () => {
      const before = await snapshotNow();
      await change([{ type: "event", id: "2" }, { type: "ticket", id: "1" }]);
      await check(before);
    });
    await t.step("a change still running when it was taken counts as after it", async () => {
      const running = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const slow = sql.begin(async (tx) => {
        await noteChanged(tx, [event]);
        running.resolve();
        await release.promise;
      });
      await running.promise;
      const during = await snapshotNow();
      release.resolve();
      await slow;
      await assert.rejects(check(during), (error: ApiError) => error.status === 412);
    });
    await t.step("a purged resource's row goes", async () => {
      await change([{ ...event, purged: true }]);
      const rows = await sql`select 1 from resource_changes where type = 'event' and id = '1'`;
      assert.equal(rows.length, 0);
    });
  } finally {
    await sql.end();
  }
});
