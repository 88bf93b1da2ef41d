import assert from "node:assert/strict";
import { z } from "zod";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { defineEndpoint, route } from "./bus.ts";
import { currentDeadline, DEADLINE_HEADER, withDeadline } from "./deadline.ts";
import { openDatabase, transaction, translateDbError } from "./db.ts";
import { GatewayTimeoutError } from "./errors.ts";
import { testBus, testDatabase } from "./testing.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("[bus] a service never starts work whose deadline has passed", async () => {
  await using testbus = await testBus();
  const { bus } = testbus;
  let calls = 0;
  const work = defineEndpoint("demo.work", { request: z.object({}), response: z.string() });
  const service = bus.serve({ name: "demo", version: "1.0.0" }, [
    route(work, () => {
      calls++;
      return "done";
    }),
  ]);
  try {
    const headers = natsHeaders();
    headers.set(DEADLINE_HEADER, String(Date.now() - 1));
    const reply = await bus.nc.request(bus.subject("demo.work"), "{}", { timeout: 1000, headers });
    assert.equal(reply.headers?.get("Status"), "504");
    assert.equal(calls, 0);
    assert.equal(await bus.request(work, {}), "done");
    assert.equal(calls, 1);
  } finally {
    await service.stop();
  }
});

Deno.test("[bus] a request made while serving one carries the same deadline on", async () => {
  await using testbus = await testBus();
  const { bus } = testbus;
  const seen: number[] = [];
  const inner = defineEndpoint("demo.inner", { request: z.object({}), response: z.string() });
  const outer = defineEndpoint("demo.outer", { request: z.object({}), response: z.string() });
  const service = bus.serve({ name: "demo", version: "1.0.0" }, [
    route(inner, (_payload, msg) => {
      seen.push(Number(msg.headers?.get(DEADLINE_HEADER)));
      return "inner";
    }),
    // Asks for 60 s, but its caller waits only 1 s: the inner request gets the caller's deadline.
    route(outer, () => bus.request(inner, {}, { timeoutMs: 60_000 })),
  ]);
  try {
    const before = Date.now();
    assert.equal(await bus.request(outer, {}, { timeoutMs: 1000 }), "inner");
    assert.equal(seen.length, 1);
    assert.ok(seen[0] >= before + 1000 && seen[0] <= Date.now() + 1000, String(seen[0] - before));
  } finally {
    await service.stop();
  }
});

Deno.test("[bus] a request sent without a deadline is served within the bus's default one", async () => {
  await using testbus = await testBus();
  const { bus } = testbus;
  const work = defineEndpoint("demo.bounded", { request: z.object({}), response: z.number() });
  const service = bus.serve({ name: "demo", version: "1.0.0" }, [
    // What the handler's transactions are bounded by (see `bounded` in db.ts).
    route(work, () => (currentDeadline() ?? Infinity) - Date.now()),
  ]);
  try {
    // A plain NATS request, as a client of the bus API other than ours may send it.
    const reply = await bus.nc.request(bus.subject("demo.bounded"), "{}", { timeout: 1000 });
    const left = JSON.parse(new TextDecoder().decode(reply.data));
    assert.ok(left > 4_000 && left <= 5_000, `bounded by ${left} ms`);
  } finally {
    await service.stop();
  }
});

Deno.test("[db] a transaction never commits after its deadline", async (t) => {
  await using database = await testDatabase();
  const sql = await openDatabase(database.url, { schema: "deadlines" });
  try {
    await sql`create table marks (name text)`;
    const count = async (name: string) =>
      Number((await sql`select count(*) from marks where name = ${name}`)[0].count);

    await t.step(
      "a statement running past the deadline is cut off: 504, nothing kept",
      async () => {
        const attempt = withDeadline(Date.now() + 300, () =>
          transaction(sql, async (tx) => {
            await tx`insert into marks values ('slow statement')`;
            await tx`select pg_sleep(1)`;
          }));
        const error = await attempt.catch((e) => e);
        assert.ok(translateDbError(error) instanceof GatewayTimeoutError, String(error));
        assert.equal(await count("slow statement"), 0);
      },
    );

    await t.step(
      "work that ends too close to the deadline rolls back instead of committing",
      async () => {
        const attempt = withDeadline(Date.now() + 300, () =>
          transaction(sql, async (tx) => {
            await tx`insert into marks values ('late commit')`;
            await sleep(250);
          }));
        await assert.rejects(attempt, GatewayTimeoutError);
        assert.equal(await count("late commit"), 0);
      },
    );

    await t.step("a transaction whose deadline passed does not start", async () => {
      const attempt = withDeadline(Date.now() - 1, () =>
        transaction(sql, async (tx) => {
          await tx`insert into marks values ('too late')`;
        }));
      await assert.rejects(attempt, GatewayTimeoutError);
      assert.equal(await count("too late"), 0);
    });

    await t.step("in time it commits; without a deadline it is unbounded", async () => {
      await withDeadline(Date.now() + 2000, () =>
        transaction(sql, async (tx) => {
          await tx`insert into marks values ('in time')`;
        }));
      await transaction(sql, async (tx) => {
        await tx`insert into marks values ('no deadline')`;
      });
      assert.equal(await count("in time"), 1);
      assert.equal(await count("no deadline"), 1);
    });
  } finally {
    await sql.end();
  }
});
