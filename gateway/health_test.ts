import assert from "node:assert/strict";
import { Hono } from "hono";
import { Bus, route } from "@shared/bus.ts";
import { createLogger } from "@shared/log.ts";
import { eventually } from "@testing/eventually.ts";
import { startNatsServer } from "@testing/nats_server.ts";
import type { GatewayEnv } from "./env.ts";
import { health, live, ready } from "./health.ts";
import { catalog } from "@shared/subjects.ts";
import { testGateway } from "./_test_utils.ts";

Deno.test("[gateway] GET /health counts the instances of every service", async () => {
  await using gw = await testGateway({ services: ["catalog", "discounts"] });
  await gw.serve("catalog", []);
  await gw.serve("catalog", []);
  await gw.serve("discounts", []);
  const response = await gw.app.request("/health");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("Cache-Control"), "private, no-store");
  assert.deepEqual(await response.json(), {
    status: "ok",
    services: { catalog: { instances: 2 }, discounts: { instances: 1 } },
  });
});

Deno.test("[gateway] GET /health answers 503 naming the missing services", async () => {
  await using gw = await testGateway({ services: ["catalog", "discounts", "audit"] });
  await gw.serve("catalog", []);
  const response = await gw.app.request("/health");
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("Cache-Control"), "private, no-store");
  assert.deepEqual(await response.json(), {
    status: "unavailable",
    services: {
      catalog: { instances: 1 },
      discounts: { instances: 0 },
      audit: { instances: 0 },
    },
    missing: ["discounts", "audit"],
  });
});

Deno.test("[gateway] GET /health ignores instances of another bus prefix", async () => {
  await using other = await testGateway({ services: ["catalog"] });
  await using gw = await testGateway({ services: ["catalog"] });
  await other.serve("catalog", []);
  const response = await gw.app.request("/health");
  assert.equal(response.status, 503);
  assert.deepEqual((await response.json()).missing, ["catalog"]);
});

Deno.test("[gateway] GET /health counts every instance while they are busy", async () => {
  await using gw = await testGateway({ services: ["catalog"] });
  // Each request keeps its instance's event loop busy for 1 ms: pings wait behind them (all
  // instances share this process, so 150 requests queue ~150 ms of work: three times the 50 ms
  // of silence that used to end a check, and within the 1 s cap even on a machine busy with the
  // rest of the suite, where 3 ms each, ~450 ms, sometimes was not).
  const busy = route(catalog.eventTopics.list, () => {
    const until = performance.now() + 1;
    while (performance.now() < until) { /* busy */ }
    return { status: 200, body: { data: [] } };
  });
  for (let i = 0; i < 3; i++) await gw.serve("catalog", [busy]);
  const load = Promise.all(
    Array.from(
      { length: 150 },
      async () => await (await gw.app.request("/v1/event-topics")).text(),
    ),
  );
  const counts: number[] = [];
  for (let i = 0; i < 5; i++) {
    const report = await (await gw.app.request("/health")).json();
    counts.push(report.services.catalog.instances);
  }
  await load;
  assert.deepEqual(counts, [3, 3, 3, 3, 3]);
});

Deno.test("[gateway] GET /health answers 503 naming a service whose every instance names a problem", async (t) => {
  await using gw = await testGateway({ services: ["catalog", "discounts"] });
  const down = { problems: () => Promise.resolve(["database unreachable"]) };
  await gw.serve("catalog", [], down);
  await gw.serve("discounts", []);
  await t.step("its only instance's database is gone: impaired", async () => {
    const response = await gw.app.request("/health");
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), {
      status: "unavailable",
      services: {
        catalog: { instances: 1, problems: ["database unreachable"] },
        discounts: { instances: 1 },
      },
      impaired: ["catalog"],
    });
  });
  await t.step("another instance serves: ok, the problem still reported", async () => {
    await gw.serve("catalog", []);
    const response = await gw.app.request("/health");
    assert.equal(response.status, 200);
    assert.deepEqual((await response.json()).services.catalog, {
      instances: 2,
      problems: ["database unreachable"],
    });
  });
});

Deno.test("[gateway] GET /health answers 503 naming NATS while the gateway has lost it", async () => {
  await using nats = await startNatsServer();
  const logger = createLogger("test", "error");
  const bus = await Bus.connect({ url: nats.url, prefix: "h", logger });
  await using _bus = { [Symbol.asyncDispose]: () => bus.close() };
  const app = new Hono<GatewayEnv>().get("/health", health({ bus, services: ["catalog"] }));
  await nats.stop();
  await eventually(() => bus.reconnecting, 5_000, "the bus to notice");
  const response = await app.request("/health");
  assert.equal(response.status, 503);
  assert.deepEqual(await response.json(), {
    status: "unavailable",
    services: {},
    problems: ["NATS unreachable: the gateway is reconnecting"],
  });
  await nats.start();
  await eventually(() => !bus.reconnecting, 10_000, "the bus to reconnect");
});

Deno.test("[gateway] GET /health/live and /health/ready answer 200 while a service is missing", async () => {
  await using gw = await testGateway({ services: ["catalog", "discounts"] });
  await gw.serve("catalog", []);
  assert.equal((await gw.app.request("/health")).status, 503, "/health: discounts is missing");
  for (const path of ["/health/live", "/health/ready"]) {
    const response = await gw.app.request(path);
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get("Cache-Control"), "private, no-store");
    assert.deepEqual(await response.json(), { status: "ok" });
  }
});

Deno.test("[gateway] GET /health/ready answers 503 while the gateway has lost NATS, /health/live 200", async () => {
  await using nats = await startNatsServer();
  const logger = createLogger("test", "error");
  const bus = await Bus.connect({ url: nats.url, prefix: "h", logger });
  await using _bus = { [Symbol.asyncDispose]: () => bus.close() };
  const app = new Hono<GatewayEnv>()
    .get("/health/live", live())
    .get("/health/ready", ready({ bus }));
  await nats.stop();
  await eventually(() => bus.reconnecting, 5_000, "the bus to notice");
  const response = await app.request("/health/ready");
  assert.equal(response.status, 503);
  assert.deepEqual(await response.json(), {
    status: "unavailable",
    problems: ["NATS unreachable: the gateway is reconnecting"],
  });
  assert.equal((await app.request("/health/live")).status, 200);
  await nats.start();
  await eventually(() => !bus.reconnecting, 10_000, "the bus to reconnect");
  assert.equal((await app.request("/health/ready")).status, 200);
});
