import assert from "node:assert/strict";
import { z } from "zod";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { defineEndpoint, route } from "./bus_endpoints.ts";
import { currentDeadline, DEADLINE_HEADER, withDeadline } from "./deadline.ts";
import { openDatabase, transaction, translateDbError } from "./db.ts";
import { GatewayTimeoutError } from "./errors.ts";
import { testBus, testDatabase } from "./testing.ts";
import { laggingProxy } from "@testing/lagging_proxy.ts";

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

// The link to Postgres stalls just as the COMMIT leaves with time to spare (a congested network, a
// paused proxy or VM): the gateway has answered 504 at the deadline, and the COMMIT must not be
// applied when it arrives. Postgres waited for it as long as the time left when the transaction
// began (its idle-in-transaction limit, counted from the last statement's end), so a COMMIT held
// for less than that was applied late (300 ms past the deadline here, before 2026-12-05).
Deno.test("[db] a COMMIT held on its way past the deadline is not applied", async (t) => {
  await using database = await testDatabase();
  await using proxy = laggingProxy(Number(new URL(database.url).port || 5432), 0);
  const url = new URL(database.url);
  url.port = String(proxy.port);
  const sql = await openDatabase(url.href, { schema: "held_commits" });
  const text = new TextDecoder();
  const held = async (name: string, lag: (chunk: Uint8Array) => number) => {
    const deadline = Date.now() + 1500;
    const outcome = await withDeadline(deadline, () =>
      transaction(sql, async (tx) => {
        await tx`insert into marks values (${name})`;
        await tx`select pg_sleep(1)`;
        // About 500 ms left: what is sent from now on reaches Postgres 300 ms past the deadline.
        proxy.sendLag = lag;
      })).then(() => "committed", (error) => String(error));
    proxy.sendLag = () => 0;
    const [{ count }] = await sql`select count(*)::int from marks where name = ${name}`;
    assert.equal(count, 0, `answered ${Date.now() - deadline} ms past the deadline: ${outcome}`);
  };
  try {
    await sql`create table marks (name text)`;
    await t.step("the COMMIT alone held: Postgres no longer waits for it", async () => {
      await held("commit held", (chunk) => /commit/i.test(text.decode(chunk)) ? 800 : 0);
    });
    await t.step("everything after the work held: refused before the COMMIT", async () => {
      await held("all held", () => 800);
    });
  } finally {
    proxy.sendLag = () => 0;
    await sql.end({ timeout: 1 });
  }
});
