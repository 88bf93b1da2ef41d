/**
 * A gateway process told to stop (SIGTERM) with SHUTDOWN_DELAY_MS: readiness fails at once while
 * it goes on serving for the delay, then it stops and exits 0. Without it the listener closed at
 * once, so a load balancer still sending requests had them refused (an operator review).
 */
import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { testBackends } from "@shared/testing.ts";
import { spawnProcess } from "@testing/processes.ts";

const DELAY_MS = 2_000;

/** A gateway process on the shared NATS (no services), listening, with SHUTDOWN_DELAY_MS `ms`. */
async function listeningGateway(ms: number) {
  const { natsUrl } = await testBackends();
  const port = freePort();
  const gateway = spawnProcess("gateway", "gateway/main.ts", {
    NATS_URL: natsUrl,
    BUS_PREFIX: `drain${crypto.randomUUID().slice(0, 8)}`,
    JWT_SECRET: crypto.randomUUID(),
    PORT: String(port),
    LOG_LEVEL: "info",
    SHUTDOWN_DELAY_MS: String(ms),
  });
  try {
    await gateway.waitForLog((line) => line.message === "gateway listening", 30_000);
  } catch (error) {
    await gateway[Symbol.asyncDispose]();
    throw error;
  }
  return Object.assign(gateway, { port });
}

Deno.test("[gateway] on SIGTERM readiness fails first, and the gateway serves on for SHUTDOWN_DELAY_MS", async () => {
  await using gateway = await listeningGateway(DELAY_MS);
  const { port } = gateway;
  // A client that keeps no idle connection: each request below opens its own, so "serves on"
  // means it accepts new connections, not only that a kept-alive one still works (a review: with
  // fetch's pool the test passed against a gateway that closed its listener at SIGTERM).
  using fresh = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const get = async (path: string) => {
    const reply = await fetch(`http://127.0.0.1:${port}${path}`, { client: fresh });
    return { status: reply.status, body: await reply.json() };
  };
  assert.equal((await get("/health/ready")).status, 200);

  const signalled = performance.now();
  const stopped = gateway.kill("SIGTERM");
  await gateway.waitForLog(
    (line) => line.message === "draining: serving on before stopping",
    5_000,
  );
  const ready = await get("/health/ready");
  assert.equal(ready.status, 503);
  assert.match(ready.body.problems[0], /stopping/);
  // Still serving, on new connections too: liveness and the API alike.
  assert.equal((await get("/health/live")).status, 200);
  const api = await get("/v1/event-topics");
  assert.equal(api.status, 503, "no catalog runs here: the gateway answers for it, it serves");
  assert.equal(api.body.errors[0].status, "503");

  await stopped;
  const status = await gateway.exited;
  assert.equal(status.code, 0);
  const tookMs = performance.now() - signalled;
  assert.ok(tookMs >= DELAY_MS, `stopped after the delay (${Math.round(tookMs)} ms)`);
  await assert.rejects(
    fetch(`http://127.0.0.1:${port}/health/live`, { client: fresh }),
    "then it stops accepting",
  );
});

Deno.test("[gateway] a second SIGTERM during SHUTDOWN_DELAY_MS stops the gateway at once", async () => {
  await using gateway = await listeningGateway(60_000);
  const first = gateway.kill("SIGTERM");
  await gateway.waitForLog(
    (line) => line.message === "draining: serving on before stopping",
    5_000,
  );
  const second = performance.now();
  await gateway.kill("SIGTERM");
  await first;
  assert.equal((await gateway.exited).code, 0);
  const tookMs = performance.now() - second;
  assert.ok(tookMs < 10_000, `stopped ${Math.round(tookMs)} ms after the second signal`);
});
