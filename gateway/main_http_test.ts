/**
 * The HTTP answers of a gateway process as gateway/main.ts starts it (behind the slow-client
 * relay, with METRICS_ADDR): OPTIONS, and HEAD on the metrics listener.
 */
import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { testBackends } from "@shared/testing.ts";
import { spawnProcess } from "@testing/processes.ts";

Deno.test("[gateway] the gateway process answers OPTIONS and HEAD as HTTP says", async (t) => {
  const { natsUrl } = await testBackends();
  const port = freePort();
  const metricsPort = freePort();
  await using gateway = spawnProcess("gateway", "gateway/main.ts", {
    NATS_URL: natsUrl,
    BUS_PREFIX: `http${crypto.randomUUID().slice(0, 8)}`,
    JWT_SECRET: crypto.randomUUID(),
    PORT: String(port),
    METRICS_ADDR: `127.0.0.1:${metricsPort}`,
    LOG_LEVEL: "info",
  });
  await gateway.waitForLog((line) => line.message === "metrics listening", 30_000);

  await t.step("OPTIONS that is no preflight: 204 with Allow", async () => {
    const reply = await fetch(`http://127.0.0.1:${port}/v1/event-topics`, { method: "OPTIONS" });
    assert.equal(reply.status, 204);
    assert.equal(reply.headers.get("Allow"), "GET, POST, HEAD, OPTIONS");
    await reply.body?.cancel();
  });

  await t.step("HEAD on METRICS_ADDR says the GET body's length", async () => {
    const url = `http://127.0.0.1:${metricsPort}/metrics`;
    const head = await fetch(url, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get("Content-Length")) > 100, "not 0");
    const missing = await fetch(`http://127.0.0.1:${metricsPort}/nothing`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("Content-Type"), "application/vnd.api+json");
    await missing.body?.cancel();
  });
});
