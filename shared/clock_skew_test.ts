/**
 * Deadlines across clocks that disagree (a review of clock skew, 2026-12-06). The gateway sends
 * each bus request's absolute deadline (`Oe-Deadline`, its own clock) and, since then, the time it
 * had left (`Oe-Budget-Ms`). A serving process whose clock runs behind the requester's read the
 * absolute deadline as later than it was, and could commit a change after the requester had
 * answered 504. Real NATS and Postgres; the skew is the headers' (a deadline 10 s ahead).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { Bus } from "./bus.ts";
import { defineEndpoint, route } from "./bus_endpoints.ts";
import { CLOCK_AHEAD_COUNT } from "./clock_skew.ts";
import { BUDGET_HEADER, DEADLINE_HEADER, remainingMs } from "./deadline.ts";
import { openDatabase, transaction, translateDbError } from "./db.ts";
import type { Logger } from "./log.ts";
import { recordingLogger, testBackends, testDatabase } from "./testing.ts";

/** A bus on the shared NATS, on a prefix of its own, logging to `logger`. */
async function skewBus(logger: Logger): Promise<Bus> {
  const { natsUrl } = await testBackends();
  return await Bus.connect({
    url: natsUrl,
    prefix: `skew${crypto.randomUUID().slice(0, 8)}`,
    logger,
  });
}

Deno.test("[bus] a requester's clock ahead: its request is held to its budget, and the skew is logged", async () => {
  await using database = await testDatabase();
  const sql = await openDatabase(database.url, { schema: "skew" });
  await sql`create table skew.changes (id serial primary key)`;
  const logger = recordingLogger();
  const bus = await skewBus(logger);
  // A change that takes 600 ms before it commits: longer than the 300 ms its requester waits.
  const slow = defineEndpoint("demo.slow", { request: z.object({}), response: z.number() });
  const left: number[] = [];
  const service = bus.serve({ name: "demo", version: "1.0.0" }, [
    route(slow, () => {
      left.push(remainingMs());
      return transaction(sql, async (tx) => {
        const [row] = await tx`insert into skew.changes default values returning id`;
        await tx`select pg_sleep(0.6)`;
        return row.id as number;
      }).catch((error) => {
        throw translateDbError(error);
      });
    }),
  ]);
  try {
    const ask = async (budgetMs?: number) => {
      const headers = natsHeaders();
      headers.set(DEADLINE_HEADER, String(Date.now() + 10_000));
      if (budgetMs !== undefined) headers.set(BUDGET_HEADER, String(budgetMs));
      const reply = await bus.nc.request(bus.subject("demo.slow"), "{}", {
        timeout: 5000,
        headers,
      });
      return reply.headers?.get("Status") ?? "200";
    };
    for (let i = 0; i < 2; i++) assert.equal(await ask(300), "504");
    assert.ok(left.every((ms) => ms <= 300), `the handler saw ${left.join(", ")} ms left`);
    assert.equal((await sql`select count(*)::int as n from skew.changes`)[0].n, 0);
    const skews = logger.lines.filter((line) => /clock runs ahead/.test(line.message));
    assert.equal(skews.length, 1, JSON.stringify(logger.lines));
    assert.equal(skews[0].level, "warn");
    assert.ok(Number(skews[0].aheadMs) > 9_000, JSON.stringify(skews[0]));
    // A requester of an older build sends no budget: its absolute deadline holds, as before.
    assert.equal(await ask(), "200");
    assert.equal((await sql`select count(*)::int as n from skew.changes`)[0].n, 1);
  } finally {
    await service.stop();
    await bus.close();
    await sql.end();
  }
});

Deno.test("[bus] our requests carry their budget beside their deadline", async () => {
  const bus = await skewBus(recordingLogger());
  const echo = defineEndpoint("demo.echo", {
    request: z.object({}),
    response: z.array(z.number()),
  });
  const service = bus.serve({ name: "demo", version: "1.0.0" }, [
    route(echo, (_payload, msg) => [
      Number(msg.headers?.get(DEADLINE_HEADER)),
      Number(msg.headers?.get(BUDGET_HEADER)),
    ]),
  ]);
  try {
    const before = Date.now();
    const [deadline, budget] = await bus.request(echo, {}, { timeoutMs: 1500 });
    assert.ok(budget > 1000 && budget <= 1500, `budget ${budget}`);
    assert.ok(deadline >= before + budget && deadline <= Date.now() + 1500, `${deadline - before}`);
  } finally {
    await service.stop();
    await bus.close();
  }
});

Deno.test("[bus] this process's clock ahead of one requester's: logged once enough requests arrived late, others on time between", async () => {
  const logger = recordingLogger();
  const bus = await skewBus(logger);
  const echo = defineEndpoint("demo.echo", { request: z.object({}), response: z.number() });
  const service = bus.serve({ name: "demo", version: "1.0.0" }, [route(echo, () => remainingMs())]);
  // Sent with 3 s, by a clock `behindMs` behind this one: it arrives with that much less.
  const ask = async (behindMs: number) => {
    const headers = natsHeaders();
    headers.set(DEADLINE_HEADER, String(Date.now() - behindMs + 3_000));
    headers.set(BUDGET_HEADER, "3000");
    const reply = await bus.nc.request(bus.subject("demo.echo"), "{}", { timeout: 5000, headers });
    return reply.headers?.get("Status") ?? "200";
  };
  const warnings = () =>
    logger.lines.filter((line) => /clock runs ahead of its/.test(line.message));
  try {
    // Half the traffic from a requester whose clock is right: it hides nothing.
    for (let i = 1; i < CLOCK_AHEAD_COUNT; i++) {
      assert.equal(await ask(2_000), "200");
      assert.equal(await ask(0), "200");
    }
    assert.deepEqual(warnings(), [], "not before enough late ones");
    assert.equal(await ask(2_000), "200");
    const [warning, ...more] = warnings();
    assert.equal(more.length, 0);
    assert.equal(warning.level, "warn");
    assert.ok(Math.abs(Number(warning.aheadMs) - 2_000) < 200, JSON.stringify(warning));
    assert.equal(warning.requests, CLOCK_AHEAD_COUNT);
    // The requester-ahead warning is another's: none here.
    assert.ok(!logger.lines.some((line) => /requester's clock runs ahead/.test(line.message)));
  } finally {
    await service.stop();
    await bus.close();
  }
});
