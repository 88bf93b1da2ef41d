/**
 * The set-up of the Idempotency-Key tests (shared/idempotency*_test.ts): a test database with a
 * pool on one schema, the keys' table installed, and a test bus; a handler served behind
 * `withIdempotency` and one keyed request sent to it.
 *
 * @example
 * ```ts ignore
 * await using store = await keyedStore("demo");
 * await store.sql`create table things (id serial primary key)`;
 * await using _service = serveKeyed(store.bus, store.sql, endpoint, handler);
 * assert.equal(await sendKeyed(store.bus, endpoint, crypto.randomUUID()), 201);
 * ```
 */
import { type Bus } from "@shared/bus.ts";
import { type Endpoint, type Handler, route } from "@shared/bus_endpoints.ts";
import { openDatabase, type OpenOptions, type Sql } from "@shared/db.ts";
import { installIdempotency, withIdempotency } from "@shared/idempotency.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { testBus, testDatabase } from "@shared/testing.ts";

/**
 * A pool on `schema` of a new test database, with the keys' table installed, and a test bus.
 * `pool` opens another on the same schema. Everything goes on disposal, the pools first, each
 * given a second: a pool that lost a connection inside a transaction may not close by itself
 * (shared/db_test.ts).
 */
export async function keyedStore(schema: string, options: Omit<OpenOptions, "schema"> = {}) {
  const db = await testDatabase();
  const b = await testBus();
  const pools: Sql[] = [];
  const dispose = async () => {
    await Promise.all(pools.map((pool) => pool.end({ timeout: 1 })));
    await b[Symbol.asyncDispose]();
    await db[Symbol.asyncDispose]();
  };
  const pool = async (more: Omit<OpenOptions, "schema"> = {}) => {
    const sql = await openDatabase(db.url, { schema, ...more });
    pools.push(sql);
    return sql;
  };
  try {
    const sql = await pool(options);
    await installIdempotency(sql);
    return { url: db.url, bus: b.bus, sql, pool, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * Serves `handler` at `endpoint` behind `withIdempotency`, an instance on each of `pools` (one
 * queue group), until disposed.
 */
export function serveKeyed(
  bus: Bus,
  pools: Sql | Sql[],
  endpoint: Endpoint<HttpRequest, HttpReply>,
  handler: Handler<HttpRequest, HttpReply>,
): AsyncDisposable {
  const services = [pools].flat().map((sql) => {
    const [wrapped] = withIdempotency(sql, [route(endpoint, handler)]);
    return bus.serve({ name: "idempotency-test", version: "0.0.0" }, [wrapped]);
  });
  return {
    async [Symbol.asyncDispose]() {
      await Promise.all(services.map((service) => service.stop()));
    },
  };
}

export interface KeyedRequestOptions {
  /** Who asks (default anonymous: then the key is scoped to the request itself). */
  actor?: HttpRequest["actor"];
  /** Default 5,000. */
  timeoutMs?: number;
}

/** Sends one request with `key` as its Idempotency-Key; resolves to its status (an error's too). */
export async function sendKeyed(
  bus: Bus,
  endpoint: Endpoint<HttpRequest, HttpReply>,
  key: string,
  { actor = null, timeoutMs = 5_000 }: KeyedRequestOptions = {},
): Promise<number> {
  const req: HttpRequest = { actor, params: {}, path: "/t", query: {}, requestId: "r" };
  try {
    return (await bus.forward(endpoint, req, { timeoutMs, idempotencyKey: key })).status;
  } catch (error) {
    return (error as { status?: number }).status ?? 500;
  }
}
