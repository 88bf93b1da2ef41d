import assert from "node:assert/strict";
import { route } from "@shared/bus_endpoints.ts";
import { loadConfig } from "@shared/config.ts";
import { freePort } from "@shared/net.ts";
import { catalog } from "@shared/subjects.ts";
import { recordingLogger, testBus } from "@shared/testing.ts";
import { gatherMetrics, serveMetrics } from "./metrics.ts";
import { countInstances } from "./health.ts";
import { testGateway, Wire } from "./_test_utils.ts";

const TOKEN = "metrics-test-token";

/** The value of the one sample line that starts with `prefix` (name and labels), or undefined. */
function sample(text: string, prefix: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

Deno.test("[gateway] GET /metrics is absent without METRICS_TOKEN", async () => {
  await using gw = await testGateway({ services: [] });
  const response = await gw.app.request("/metrics");
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

Deno.test("[gateway] GET /metrics needs the token and labels each instance's figures", async (t) => {
  await using gw = await testGateway({ services: ["catalog"], env: { METRICS_TOKEN: TOKEN } });
  const instance = await gw.serve("catalog", [
    route(catalog.events.get, () => ({ status: 200, body: { data: null } })),
  ]);
  const scrape = () =>
    gw.app.request("/metrics", { headers: { Authorization: `Bearer ${TOKEN}` } });

  await t.step("a missing or wrong token is 401", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: "Bearer wrong" },
      { Authorization: TOKEN },
    ];
    for (const headers of attempts) {
      const response = await gw.app.request("/metrics", { headers });
      assert.equal(response.status, 401);
      assert.equal(response.headers.get("WWW-Authenticate"), "Bearer");
      await response.body?.cancel();
    }
  });

  await t.step("requests count by route pattern on both sides of the bus", async () => {
    const served = `oe_bus_requests_total{service="catalog",instance="${instance.id}",` +
      `side="server",endpoint="catalog.events.get"}`;
    const routed = `oe_http_requests_total{service="gateway",instance=`;
    const before = await (await scrape()).text();
    for (const id of ["1", "2", "3"]) {
      assert.equal((await gw.app.request(`/v1/events/${id}`)).status, 200);
    }
    const response = await scrape();
    assert.equal(response.status, 200);
    assert.match(response.headers.get("Content-Type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.equal(response.headers.get("Cache-Control"), "private, no-store");
    const after = await response.text();
    assert.equal(sample(after, served), (sample(before, served) ?? 0) + 3);
    const byRoute = (text: string) =>
      text.split("\n").filter((l) =>
        l.startsWith(routed) && l.includes('method="GET",route="/v1/events/:id",status="200"')
      ).map((l) => Number(l.split(" ")[1])).reduce((a, b) => a + b, 0);
    assert.equal(byRoute(after), byRoute(before) + 3);
    assert.equal(sample(after, 'oe_instances{service="catalog"}'), 1);
    assert.equal(sample(after, 'oe_instances{service="gateway"}'), 1);
  });
});

Deno.test("[gateway] METRICS_ADDR serves /metrics apart from the public address", async () => {
  await using bus = await testBus();
  const port = freePort();
  const config = loadConfig({ JWT_SECRET: "x", METRICS_ADDR: `127.0.0.1:${port}` });
  const server = serveMetrics(bus.bus, config)!;
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(response.status, 200);
    assert.match(await response.text(), /^# HELP /m);
    const other = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(other.status, 404);
    assert.equal(other.headers.get("Content-Type"), "application/vnd.api+json", "as the API's");
    assert.equal((await other.json()).errors[0].code, "not_found");
  } finally {
    await server.shutdown();
  }
});

Deno.test("[gateway] with METRICS_ADDR, /metrics is not on the public address, token or not", async () => {
  // With both set, the public address served it too (an operator review): a token meant to
  // guard the internal listener exposed the figures on the API's address.
  const port = freePort();
  await using gw = await testGateway({
    services: [],
    env: { METRICS_TOKEN: TOKEN, METRICS_ADDR: `127.0.0.1:${port}` },
  });
  const response = await gw.app.request("/metrics", {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

Deno.test("[gateway] METRICS_ADDR answers HEAD with the GET body's length, and other methods 405", async () => {
  await using bus = await testBus();
  const port = freePort();
  const config = loadConfig({ JWT_SECRET: "x", METRICS_ADDR: `127.0.0.1:${port}` });
  const server = serveMetrics(bus.bus, config)!;
  try {
    const url = `http://127.0.0.1:${port}/metrics`;
    // Each request is counted under its method, a new series the first time: once each first.
    await (await fetch(url, { method: "HEAD" })).body?.cancel();
    await (await fetch(url)).body?.cancel();
    const head = await fetch(url, { method: "HEAD" });
    assert.equal(head.status, 200);
    const length = Number(head.headers.get("Content-Length"));
    const body = new TextEncoder().encode(await (await fetch(url)).text());
    // The figures move between two scrapes (the gateway's own memory, say), the size barely.
    assert.ok(length > 0 && Math.abs(length - body.length) < body.length / 10, `${length}`);
    const post = await fetch(url, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("Allow"), "GET, HEAD, OPTIONS");
    assert.equal((await post.json()).errors[0].code, "method_not_allowed");
    const options = await fetch(url, { method: "OPTIONS" });
    assert.equal(options.status, 204);
    assert.equal(options.headers.get("Allow"), "GET, HEAD, OPTIONS");
    await options.body?.cancel();
    // `OPTIONS *` asks about the listener itself: what its one route allows (it was a 404).
    using wire = await Wire.open(port);
    const asterisk = await wire.exchange("OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert.match(asterisk, /^HTTP\/1\.1 204 [^]*\r\nAllow: GET, HEAD, OPTIONS\r\n/);
  } finally {
    await server.shutdown();
  }
});

// Found by an operator review (2026-12-05): a Prometheus with a wrong token was refused on
// METRICS_ADDR without a trace in the gateway's log, and its scrapes went uncounted.
Deno.test("[gateway] METRICS_ADDR writes an access line with a request id for every request", async () => {
  await using bus = await testBus();
  const port = freePort();
  const config = loadConfig({
    JWT_SECRET: "x",
    METRICS_ADDR: `127.0.0.1:${port}`,
    METRICS_TOKEN: TOKEN,
  });
  const logger = recordingLogger();
  const requestLines = () => logger.lines.filter((line) => line.message === "request");
  const server = serveMetrics(bus.bus, config, logger)!;
  try {
    const url = `http://127.0.0.1:${port}/metrics`;
    const refused = await fetch(url, { headers: { Authorization: "Bearer wrong" } });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const scraped = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(scraped.status, 200);
    await scraped.body?.cancel();
    const lines = requestLines();
    assert.deepEqual(lines.map(({ method, path, status }) => [method, path, status]), [
      ["GET", "/metrics", 401],
      ["GET", "/metrics", 200],
    ]);
    assert.equal(lines[0].requestId, refused.headers.get("X-Request-Id"));
    assert.equal(lines[1].requestId, scraped.headers.get("X-Request-Id"));
  } finally {
    await server.shutdown();
  }
});

Deno.test("[gateway] GET /metrics labels made-up methods _OTHER, not as the client sent them", async () => {
  await using gw = await testGateway({ services: [], env: { METRICS_TOKEN: TOKEN } });
  const scrape = async () =>
    await (await gw.app.request("/metrics", { headers: { Authorization: `Bearer ${TOKEN}` } }))
      .text();
  const other = (text: string) =>
    text.split("\n").filter((l) =>
      l.startsWith("oe_http_requests_total{") && l.includes(`method="_OTHER",route="/v1/events"`)
    ).map((l) => Number(l.split(" ")[1])).reduce((a, b) => a + b, 0);
  const before = await scrape();
  for (let i = 0; i < 20; i++) {
    const response = await gw.app.request("/v1/events", { method: `M${i}XXXXXXXXXXXXXXXX` });
    await response.body?.cancel();
  }
  const after = await scrape();
  assert.doesNotMatch(after, /XXXXXXXX/);
  assert.equal(other(after), other(before) + 20);
  const lines = (text: string) => text.split("\n").length;
  assert.ok(lines(after) - lines(before) < 40, "20 methods made at most one series per family");
});

// Found by a review: the scrape stopped at 250 ms of silence, so an instance whose event loop was
// busy for a moment (the one an operator most needs to see) dropped out of it, while /health,
// which waits for every instance seen lately, counted it.
Deno.test("[gateway] a scrape waits for an instance seen lately that answers late", async () => {
  await using b = await testBus();
  let slowMs = 0;
  // Each answers pings too, as every instance does: nobody answering a ping means gone.
  const instance = (id: string, delayMs: () => number) =>
    ["STATS", "PING"].map((verb) =>
      b.bus.nc.subscribe(`$SRV.${verb}.catalog`, {
        callback: (_error, msg) => {
          const answer = { id, name: "catalog", metadata: { prefix: b.prefix }, metrics: [] };
          setTimeout(() => msg.respond(JSON.stringify(answer)), delayMs());
        },
      })
    );
  const subs = [instance("fast", () => 0), instance("busy", () => slowMs)].flat();
  try {
    // The windows' clock, moved by the test: 11 s pass without waiting them out.
    let now = Date.now();
    const clock = { now: () => now };
    const scrape = () => gatherMetrics(b.bus, ["catalog"], clock);
    assert.equal(sample(await scrape(), 'oe_instances{service="catalog"}'), 2);
    slowMs = 600;
    assert.equal(sample(await scrape(), 'oe_instances{service="catalog"}'), 2);
    // Scrapes come every 15-60 s: an instance seen 11 s ago is still waited for (a review), even
    // after a /health check between them, whose own window is 10 s (another review).
    now += 11_000;
    await countInstances(b.bus, "catalog", clock);
    assert.equal(sample(await scrape(), 'oe_instances{service="catalog"}'), 2);
  } finally {
    subs.forEach((sub) => sub.unsubscribe());
  }
});
