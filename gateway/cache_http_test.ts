/**
 * The response cache as the caches in front of the gateway (a CDN, a browser, a proxy) rely on
 * it (RFC 9110 §8.8 and §13, RFC 9111), against the real catalog, NATS and Postgres.
 */
import assert from "node:assert/strict";
import { createLogger } from "@shared/log.ts";
import { testBus } from "@shared/testing.ts";
import { caller, startTestSystem, type TestSystem } from "@testing/system.ts";
import { createApp } from "./app.ts";

/** Another gateway instance on the system's bus prefix, with its own cache and connection. */
async function otherGateway(system: TestSystem) {
  const bus = await testBus(system.prefix);
  system.defer(async () => await bus[Symbol.asyncDispose]());
  const app = createApp({
    bus: bus.bus,
    config: system.config,
    logger: createLogger("g2", "error"),
  });
  await bus.bus.nc.flush();
  return caller(app);
}

Deno.test("[gateway] every gateway answers a URL with the same bytes, whatever URL filled its cache", async () => {
  await using system = await startTestSystem();
  await system.createTopic("Astronomy");
  await system.readFacts();
  const other = await otherGateway(system);
  const sortFirst = "/v1/event-topics?sort=name&page%5Bsize%5D=5";
  const sizeFirst = "/v1/event-topics?page%5Bsize%5D=5&sort=name";
  // Each gateway's cache is filled by another spelling of the same query.
  assert.equal((await system.call("GET", sortFirst)).headers.get("X-Cache"), "MISS");
  assert.equal((await other("GET", sizeFirst)).headers.get("X-Cache"), "MISS");
  for (const path of [sortFirst, sizeFirst]) {
    const here = await system.call("GET", path);
    const there = await other("GET", path);
    assert.equal(here.headers.get("X-Cache"), "HIT");
    assert.equal(there.headers.get("X-Cache"), "HIT");
    assert.equal(here.text, there.text, `${path}: the same document on both gateways`);
    assert.equal(here.headers.get("ETag"), there.headers.get("ETag"), `${path}: the same ETag`);
  }
});
