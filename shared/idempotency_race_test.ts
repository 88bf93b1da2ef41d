/**
 * Requests racing on one Idempotency-Key, served by two instances (two pools, one queue group),
 * with the real Postgres and NATS: the change is made once, whatever the timing.
 */
import assert from "node:assert/strict";
import { type Bus } from "./bus.ts";
import { httpEndpoint } from "./bus_endpoints.ts";
import { type Sql, transaction } from "./db.ts";
import { keyedStore, sendKeyed, serveKeyed } from "@testing/keyed_store.ts";
import { eventually } from "@testing/eventually.ts";

const endpoint = httpEndpoint("test.race");
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends the one request of these tests with `key`, as a signed-in caller (keys are theirs). */
function send(bus: Bus, key: string, timeoutMs?: number): Promise<number> {
  return sendKeyed(bus, endpoint, key, { actor: { id: "7" }, timeoutMs });
}

Deno.test("[idempotency] requests racing on one key change once", async (t) => {
  await using store = await keyedStore("race");
  const { bus, sql } = store;
  const pools = [sql, await store.pool()];
  await sql`create table things (id serial primary key, key text not null)`;
  const rows = async (key: string) =>
    (await sql`select count(*)::int from things where key = ${key}`)[0].count;
  let slowFor = 0;
  let woken = 0; // handlers that came back from their pause, slow or not
  await using _instances = serveKeyed(bus, pools, endpoint, async (req) => {
    const key = req.requestId;
    await transaction(sql, (tx) => tx`insert into things (key) values (${key})`);
    const slow = slowFor;
    slowFor = 0;
    await pause(slow || 100);
    woken++;
    return { status: 201, body: null };
  });
  /** Whether a backend of the database other than `sql`'s asking one is in a transaction. */
  const inTransaction = async () =>
    (await sql`select 1 from pg_stat_activity where datname = current_database()
      and xact_start is not null and pid <> pg_backend_pid()`).length > 0;

  await t.step("twenty at once on two instances: one 201, the others 409", async () => {
    const key = crypto.randomUUID();
    slowFor = 1_000; // the others all arrive while the first runs
    const statuses = await Promise.all(Array.from({ length: 20 }, () => send(bus, key)));
    assert.deepEqual(statuses.filter((s) => s !== 409), [201], statuses.join());
    assert.equal(await rows("r"), 1);
    assert.equal(await send(bus, key), 201, "a retry afterwards replays");
    assert.equal(await rows("r"), 1);
  });

  await t.step(
    "a retry after the first's deadline runs once; the first never commits",
    async () => {
      await sql`delete from things`;
      const key = crypto.randomUUID();
      slowFor = 1_500;
      const first = send(bus, key, 700);
      await pause(900);
      const wokenBefore = woken;
      const retry = await send(bus, key);
      assert.equal(await first, 504);
      assert.equal(retry, 201);
      // The first has woken up and its transaction ended (committed or not): after a fixed
      // second, a first slower to wake could still commit once the rows were counted.
      await eventually(() => woken === wokenBefore + 2, 10_000, "the first handler's end");
      await eventually(async () => !await inTransaction(), 10_000, "its transaction's end");
      assert.equal(await rows("r"), 1);
      assert.equal(await send(bus, key), 201);
      assert.equal(await rows("r"), 1);
    },
  );
});

/** Whether a backend of `sql`'s database waits on a lock running a statement like `text`. */
async function waitsOnLock(sql: Sql, text: string): Promise<boolean> {
  const rows = await sql`select 1 from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'
      and query like ${`%${text}%`}`;
  return rows.length > 0;
}

Deno.test(
  "[idempotency] a key freed between a retry's claim and its look finds the key free, not running",
  async () => {
    await using store = await keyedStore("race");
    const { bus, sql } = store;
    const locker = await store.pool({ max: 2 });
    await sql`create table things (id serial primary key)`;
    const firstMayFail = Promise.withResolvers<void>();
    let calls = 0;
    await using _instance = serveKeyed(bus, sql, endpoint, async () => {
      if (++calls === 1) {
        await firstMayFail.promise;
        throw new Error("the first try fails");
      }
      await transaction(sql, (tx) => tx`insert into things default values`);
      return { status: 201, body: null };
    });
    const key = crypto.randomUUID();
    const first = send(bus, key);
    await eventually(async () => (await sql`select 1 from idempotency_keys`).length === 1);
    // The retry's claim waits behind a lock on the first's row: when it goes on, it finds the
    // first running. Then, before the retry looks at the row, the first's claim is freed (as
    // a failed first try frees it): the table lock queued behind the claim holds the look.
    const [holdRow, holdTable] = await Promise.all([locker.reserve(), locker.reserve()]);
    try {
      await holdRow`begin`;
      await holdRow`select 1 from idempotency_keys for update`;
      const retry = send(bus, key);
      await eventually(() => waitsOnLock(sql, "insert into idempotency_keys"));
      await holdTable`begin`;
      // Sent now (a postgres.js query waits to be awaited otherwise).
      const freed = holdTable`lock table idempotency_keys in access exclusive mode`.execute();
      await eventually(() => waitsOnLock(sql, "lock table idempotency_keys"));
      await holdRow`commit`;
      await freed;
      await holdTable`delete from idempotency_keys`;
      await holdTable`commit`;
      assert.equal(await retry, 201, "the retry of a freed key runs");
      firstMayFail.resolve();
      assert.equal(await first, 500);
      assert.equal((await sql`select count(*)::int from things`)[0].count, 1);
    } finally {
      firstMayFail.resolve(); // else the service's stop waits for the first try for good
      holdRow.release();
      holdTable.release();
    }
  },
);
