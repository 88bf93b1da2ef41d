/**
 * A keyed write whose held transaction dies after its change (Postgres restarted, the backend
 * terminated, the connection lost) while its handler is still rendering the answer: the change is
 * gone, so the request must fail and store nothing, and a retry with the same key must make the
 * change (once). Real Postgres and NATS.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { type Bus, type Handler, httpEndpoint, route } from "./bus.ts";
import { openDatabase, readOwnWrites, type Sql, transaction } from "./db.ts";
import { installIdempotency, withIdempotency } from "./idempotency.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";
import { testBus, testDatabase } from "./testing.ts";

const endpoint = httpEndpoint("test.lost");

/** Serves `handler`, wrapped by `withIdempotency`, on `bus` until disposed. */
function serveKeyed(bus: Bus, sql: Sql, handler: Handler<HttpRequest, HttpReply>) {
  const [wrapped] = withIdempotency(sql, [route(endpoint, handler)]);
  const service = bus.serve({ name: "idempotency-lost-test", version: "0.0.0" }, [wrapped]);
  return { [Symbol.asyncDispose]: () => service.stop() };
}

/** Sends the one request of these tests with `key`; resolves to its status (an error's too). */
async function send(bus: Bus, key: string): Promise<number> {
  const req: HttpRequest = { actor: null, params: {}, path: "/t", query: {}, requestId: "r" };
  try {
    const reply = await bus.forward(endpoint, req, { timeoutMs: 5_000, idempotencyKey: key });
    return reply.status;
  } catch (error) {
    return (error as { status?: number }).status ?? 500;
  }
}

/** Terminates the backends of `url`'s database that sit idle inside a transaction. */
async function terminateIdleInTransaction(url: string): Promise<number> {
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const name = new URL(url).pathname.slice(1);
    for (let tries = 0; tries < 50; tries++) {
      const killed = await admin`select pg_terminate_backend(pid) from pg_stat_activity
        where datname = ${name} and state = 'idle in transaction' and pid <> pg_backend_pid()`;
      if (killed.length > 0) return killed.length;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return 0;
  } finally {
    await admin.end();
  }
}

Deno.test(
  "[idempotency] a held change lost before its answer fails the request and stores nothing",
  async (t) => {
    await using db = await testDatabase();
    await using b = await testBus();
    const sql = await openDatabase(db.url, { schema: "lost" });
    try {
      await installIdempotency(sql);
      await sql`create table things (id serial primary key, key text not null)`;
      const rows = async (key: string) =>
        Number((await sql`select count(*) from things where key = ${key}`)[0].count);
      const stored = async (key: string) =>
        (await sql`select reply from idempotency_keys where key = ${key}`)[0]?.reply ?? null;

      for (const rereads of [false, true]) {
        const variant = rereads
          ? "the answer then reads its own writes (includes)"
          : "the answer then waits on something else (another service)";
        await t.step(variant, async () => {
          const key = crypto.randomUUID();
          let kill: Promise<number> | undefined;
          let lose = true;
          await using _service = serveKeyed(b.bus, sql, async () => {
            await transaction(sql, (tx) => tx`insert into things (key) values (${key})`);
            if (lose) {
              lose = false;
              // While the answer is being rendered, the held transaction's backend dies.
              kill = terminateIdleInTransaction(db.url);
              assert.equal(await kill, 1);
              await new Promise((resolve) => setTimeout(resolve, 100));
            }
            if (rereads) await readOwnWrites(sql, (q) => q`select count(*) from things`);
            return { status: 201, body: { data: { type: "thing", id: key } } };
          });
          const first = await send(b.bus, key);
          assert.equal(await rows(key), 0, "the change was lost with its transaction");
          assert.equal(first, 503, `told ${first} for a change that did not happen`);
          assert.equal(await stored(key), null, "no answer kept for a change that was lost");
          const retry = await send(b.bus, key);
          assert.equal(retry, 201, "the retry makes the change");
          assert.equal(await rows(key), 1);
          assert.equal(await send(b.bus, key), 201, "and a further retry replays it");
          assert.equal(await rows(key), 1);
        });
      }
    } finally {
      // A pool that lost a connection inside a transaction may not close by itself (db_test.ts).
      await sql.end({ timeout: 1 });
    }
  },
);

Deno.test(
  "[idempotency] two changes a keyed handler starts at once commit together with its answer",
  async () => {
    await using db = await testDatabase();
    await using b = await testBus();
    const sql = await openDatabase(db.url, { schema: "together" });
    try {
      await installIdempotency(sql);
      await sql`create table things (id serial primary key, key text not null)`;
      const key = crypto.randomUUID();
      const insert = () => transaction(sql, (tx) => tx`insert into things (key) values (${key})`);
      await using _service = serveKeyed(b.bus, sql, async () => {
        await Promise.all([insert(), insert()]);
        return { status: 201, body: null };
      });
      const statuses = [await send(b.bus, key), await send(b.bus, key)];
      const [{ count }] = await sql`select count(*)::int from things where key = ${key}`;
      assert.deepEqual({ statuses, count }, { statuses: [201, 201], count: 2 });
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
);
