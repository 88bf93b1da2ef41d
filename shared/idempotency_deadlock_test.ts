/**
 * A keyed write Postgres ends to break a deadlock: the answer is the 503 that says nothing
 * changed, and the same Idempotency-Key is free for the retry, which runs once (README,
 * "Concurrent writes Postgres refuses").
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { untilWaitingForLocks } from "@testing/table_lock.ts";
import { httpEndpoint, route } from "./bus_endpoints.ts";
import { transaction } from "./db.ts";
import { withIdempotency } from "./idempotency.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";
import { keyedStore } from "@testing/keyed_store.ts";

const decoder = new TextDecoder();

Deno.test("[idempotency] a keyed write ended by a deadlock is a 503, and its key is free for the retry", async () => {
  await using store = await keyedStore("deadlock");
  const { bus, sql } = store;
  // Another writer, in its own session: it waits long before it looks for a deadlock, so
  // Postgres ends the handler's transaction, which looks first (deadlock_timeout 1 s).
  const other = postgres(store.url, { max: 1, onnotice: () => {} });
  try {
    await sql`create table rows (id int primary key, n int not null)`;
    await sql`insert into rows values (1, 0), (2, 0)`;
    let runs = 0;
    const handler = async (): Promise<HttpReply> => {
      runs++;
      await transaction(sql, async (tx) => {
        await tx`update rows set n = n + 1 where id = 1`;
        await tx`update rows set n = n + 1 where id = 2`;
      });
      return { status: 200, body: { done: true } };
    };
    const endpoint = httpEndpoint("test.deadlock");
    const service = bus.serve(
      { name: "deadlock-test", version: "0.0.0" },
      withIdempotency(sql, [route(endpoint, handler)]),
    );
    try {
      const key = crypto.randomUUID();
      const req: HttpRequest = {
        actor: null,
        params: {},
        path: "/t",
        query: {},
        requestId: "r",
      };
      const send = () => bus.forward(endpoint, req, { timeoutMs: 8_000, idempotencyKey: key });

      const row2Held = Promise.withResolvers<void>();
      const handlerWaits = Promise.withResolvers<void>();
      const crossing = other.begin(async (tx) => {
        await tx`set local deadlock_timeout = '20s'`;
        await tx`update deadlock.rows set n = n + 10 where id = 2`;
        row2Held.resolve();
        await handlerWaits.promise;
        await tx`update deadlock.rows set n = n + 10 where id = 1`;
      });
      crossing.catch((error) => row2Held.reject(error));
      await row2Held.promise;
      const firstCall = send();
      // The handler holds row 1 and waits for row 2; the other writer then asks for row 1.
      await untilWaitingForLocks(sql, { count: 1, what: "the keyed write" });
      handlerWaits.resolve();
      const first = await firstCall;
      await crossing;
      assert.equal(first.status, 503, decoder.decode(first.body));
      assert.match(decoder.decode(first.body), /nothing was changed; try again/);
      assert.equal(runs, 1);
      const afterDeadlock = await sql<{ n: number }[]>`select n from rows order by id`;
      assert.deepEqual(afterDeadlock.map((row) => row.n), [10, 10], "the other writer's alone");

      const retry = await send();
      assert.equal(retry.status, 200, decoder.decode(retry.body));
      assert.equal(runs, 2, "the retry ran the change");
      const again = await send();
      assert.equal(again.status, 200);
      assert.equal(decoder.decode(again.body), decoder.decode(retry.body));
      assert.equal(runs, 2, "a third send is answered from the key");
      const rows = await sql<{ n: number }[]>`select n from rows order by id`;
      assert.deepEqual(rows.map((row) => row.n), [11, 11], "the change made once");
    } finally {
      await service.stop();
    }
  } finally {
    await other.end();
  }
});
