/**
 * Expired keys are purged off the request path, with the real Postgres and NATS: a backlog whose
 * single DELETE outlasts the pool's statement timeout is purged too.
 */
import assert from "node:assert/strict";
import { httpEndpoint, route } from "./bus_endpoints.ts";
import { openDatabase, type Sql } from "./db.ts";
import { installIdempotency, withIdempotency } from "./idempotency.ts";
import type { HttpRequest } from "./schemas/http.ts";
import { testBus, testDatabase } from "./testing.ts";
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
    await using db = await testDatabase();
    await using b = await testBus();
    // Seeding and counting need no timeout; the served pool has a short one.
    const admin = await openDatabase(db.url, { schema: "purge", statementTimeoutMs: 0 });
    const sql = await openDatabase(db.url, {
      schema: "purge",
      statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    });
    try {
      await installIdempotency(admin);
      await seedKeys(admin, BACKLOG);
      const [wrapped] = withIdempotency(sql, [
        route(endpoint, () => Promise.resolve({ status: 200, body: null })),
      ]);
      const service = b.bus.serve({ name: "idempotency-purge-test", version: "0.0.0" }, [
        wrapped,
      ]);
      try {
        const req: HttpRequest = { actor: null, params: {}, path: "/p", query: {}, requestId: "r" };
        // The keyed request starts the purge (its first for this pool) and does not wait for it.
        const reply = await b.bus.forward(endpoint, req, {
          timeoutMs: 5_000,
          idempotencyKey: crypto.randomUUID(),
        });
        assert.equal(reply.status, 200);
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
      } finally {
        await service.stop();
      }
    } finally {
      await Promise.all([sql.end({ timeout: 1 }), admin.end({ timeout: 1 })]);
    }
  },
);
