/**
 * The hooks' reset against a real gateway with its response cache on: it replaces rows by SQL,
 * which publishes no fact, and ids start again at 1, so the same URL means another row after it.
 */
import assert from "node:assert/strict";
import { startTestSystem } from "@testing/system.ts";
import { closeFixtureDatabase, openFixtureDatabase, resetCatalog, type Sql } from "./reset.ts";
import { createEvent, createUser } from "./factories.ts";

/** Long enough that a page stored past it lives the whole CACHE_TTL_MS. */
const SETTLE_MS = 200;

async function eventNamed(sql: Sql, name: string): Promise<string> {
  const owner = await createUser(sql, { email: "owner@example.com" });
  return await createEvent(sql, { ownerId: owner, identifier: "abcdef01", name });
}

Deno.test("[hooks] after a reset the gateway serves the new row, not the page it cached before", async () => {
  await using system = await startTestSystem({ env: { CACHE_SETTLE_MS: String(SETTLE_MS) } });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, system.app.fetch);
  const sql = openFixtureDatabase(system.databaseUrl);
  // What scripts/dredd.ts gives the hooks' environment.
  const hookEnv = {
    NATS_URL: Deno.env.get("NATS_URL") || "nats://127.0.0.1:4222",
    BUS_PREFIX: system.prefix,
    HOST: "127.0.0.1",
    PORT: String(server.addr.port),
  };
  const before = Object.fromEntries(Object.keys(hookEnv).map((name) => [name, Deno.env.get(name)]));
  for (const [name, value] of Object.entries(hookEnv)) Deno.env.set(name, value);
  try {
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${server.addr.port}${path}`);
      const body = await response.json();
      return { cache: response.headers.get("X-Cache"), name: body.data?.attributes?.name };
    };
    await resetCatalog(sql);
    assert.equal(await eventNamed(sql, "Before the reset"), "1");
    // Past the settle time of the reset's emptying: from now on a stored page lives its TTL.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 100));
    assert.deepEqual(await get("/v1/events/1"), { cache: "MISS", name: "Before the reset" });
    assert.deepEqual(await get("/v1/events/1"), { cache: "HIT", name: "Before the reset" });

    await resetCatalog(sql);
    assert.equal(await eventNamed(sql, "After the reset"), "1", "ids start again at 1");
    assert.deepEqual(await get("/v1/events/1"), { cache: "MISS", name: "After the reset" });
  } finally {
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
    await sql.end();
    await closeFixtureDatabase();
    await server.shutdown();
  }
});
