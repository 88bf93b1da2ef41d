/**
 * Expired keys are purged off the request path, with the real Postgres and NATS: a backlog whose
 * single DELETE outlasts the pool's statement timeout is purged too.
 */
import assert from "node:assert/strict";
import { httpEndpoint } from "./bus_endpoints.ts";
import { type Sql } from "./db.ts";
import { keyedStore, sendKeyed, serveKeyed } from "@testing/keyed_store.ts";
import { eventually } from "@testing/eventually.ts";

const endpoint = httpEndpoint("test.purge");
/**
 * Expired keys to seed: one DELETE of 600,000 took 300-340 ms on a quiet machine here, so of these
 * about twice STATEMENT_TIMEOUT_MS, while a batch of the purge took at most 41 ms: room both ways
 * for a machine busy with the rest of the suite (seeding: about 4 s).
 */
const BACKLOG = 900_000;
const STATEMENT_TIMEOUT_MS = 250;

/** Seeds `count` keys that expired an hour ago, and one that has not expired. */
async function seedKeys(sql: Sql, count: number): Promise<void> {
  await sql`insert into idempotency_keys (caller, key, request_hash, reply, expires_at)
    select 'seeded', i::text, 'h', 'r', now() - interval '1 hour'
    from generate_series(1, ${count}) as i`;
  await sql`insert into idempotency_keys (caller, key, request_hash, reply, expires_at)
    values ('seeded', 'live', 'h', 'r', now() + interval '1 hour')`;
}

async function expiredKeys(sql: Sql): Promise<number> {
  const [row] = await sql`select count(*)::int as n from idempotency_keys
    where expires_at < now()`;
  return row.n;
}

Deno.test(
  "[idempotency] expired keys are purged even when one DELETE of them all would time out",
  async () => {
    // Seeding and counting need no timeout; the served pool has a short one.
    await using store = await keyedStore("purge", { statementTimeoutMs: 0 });
    const { bus, sql: admin } = store;
    const sql = await store.pool({ statementTimeoutMs: STATEMENT_TIMEOUT_MS });
    await seedKeys(admin, BACKLOG);
    const answer = () => Promise.resolve({ status: 200, body: null });
    await using _service = serveKeyed(bus, sql, endpoint, answer);
    // The keyed request starts the purge (its first for this pool) and does not wait for it.
    assert.equal(await sendKeyed(bus, endpoint, crypto.randomUUID()), 200);
    let left = BACKLOG;
    await eventually(
      async () => (left = await expiredKeys(admin)) === 0,
      30_000,
      "no expired key left",
    ).catch((error) => {
      throw new Error(`${error.message}: ${left} of ${BACKLOG} still there`);
    });
    const [live] = await admin`select 1 from idempotency_keys where key = 'live'`;
    assert.ok(live, "a key that has not expired stays");
  },
);
