/**
 * The HTTP answers of a gateway process as gateway/main.ts starts it (behind the slow-client
 * relay, with METRICS_ADDR): OPTIONS, and HEAD on the metrics listener.
 */
import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { testBackends } from "@shared/testing.ts";
import { spawnProcess } from "@testing/processes.ts";
import { LOGGED_PATH_MAX } from "./middleware/request_id.ts";

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

  // A growth review: a 60 kB path was a 60 kB access line.
  await t.step("a long path's access line holds its first LOGGED_PATH_MAX characters", async () => {
    const path = `/v1/${"a".repeat(20_000)}`;
    const reply = await fetch(`http://127.0.0.1:${port}${path}`);
    assert.equal(reply.status, 404);
    const id = reply.headers.get("X-Request-Id");
    await reply.body?.cancel();
    const line = await gateway.waitForLog(
      (l) => l.message === "request" && l.requestId === id,
      5_000,
    );
    assert.equal(line.path, path.slice(0, LOGGED_PATH_MAX));
    assert.equal(line.pathLength, path.length);
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

/** Sends `head` on a new connection and reads the answer until the gateway closes it. */
async function rawExchange(port: number, head: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(head));
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(16 * 1024);
  for (;;) {
    const read = await conn.read(buffer);
    if (read === null) break;
    chunks.push(buffer.slice(0, read));
  }
  conn.close();
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((chunk) => [...chunk])));
}

// An observability review: with OTEL_DENO, Deno's telemetry builds the URL from Host before the
// handler; a Host no URL can hold threw there, and Deno answered a plain-text 500 and printed a
// stack trace to stderr, with no access line.
Deno.test("[gateway] with tracing on, a Host no URL can hold is the JSON:API 400, logged", async (t) => {
  const { natsUrl } = await testBackends();
  for (const headerTimeout of ["10000", "0"]) {
    await t.step(`HEADER_TIMEOUT_MS=${headerTimeout}`, async () => {
      const port = freePort();
      await using gateway = spawnProcess("gateway", "gateway/main.ts", {
        NATS_URL: natsUrl,
        BUS_PREFIX: `http${crypto.randomUUID().slice(0, 8)}`,
        JWT_SECRET: crypto.randomUUID(),
        PORT: String(port),
        HEADER_TIMEOUT_MS: headerTimeout,
        LOG_LEVEL: "info",
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${freePort()}`,
      });
      await gateway.waitForLog((line) => line.message === "gateway listening", 30_000);
      for (const host of ["[", "a:b:c", "x:99999"]) {
        const answer = await rawExchange(
          port,
          `GET /v1/event-topics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        );
        assert.match(answer, /^HTTP\/1\.1 400 /, answer);
        assert.match(answer, /content-type: application\/vnd\.api\+json/i);
        assert.match(answer, /"header":"Host"/);
      }
      await gateway.waitForLog((line) => line.message === "request" && line.status === 400, 5_000);
      assert.ok(!gateway.lines.some((line) => line.includes("TypeError")), "no stack trace");
    });
  }
});
