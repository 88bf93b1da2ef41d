import assert from "node:assert/strict";
import { assertLoopback, percentile, runLoad, summarize } from "./load.ts";

Deno.test("[bench] percentile picks the nearest rank", () => {
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(sorted, 0.5), 50);
  assert.equal(percentile(sorted, 0.99), 99);
  assert.equal(percentile(sorted, 1), 100);
  assert.ok(Number.isNaN(percentile(new Float64Array(), 0.5)));
});

Deno.test("[bench] assertLoopback refuses addresses off this machine", () => {
  assertLoopback("http://127.0.0.1:8080/v1/events");
  assertLoopback("http://localhost:8080/");
  assert.throws(() => assertLoopback("http://10.0.0.1/"), /loopback/);
  assert.throws(() => assertLoopback("https://example.com/"), /loopback/);
});

Deno.test("[bench] summarize adds runs up and sorts their latencies", () => {
  const run = (latencies: number[], errors = 0) => ({
    requests: latencies.length,
    errors,
    elapsedMs: 1000,
    latencies: Float64Array.from(latencies),
  });
  const summary = summarize([run([3, 1, 2]), run([5, 4], 1)]);
  assert.equal(summary.requests, 5);
  assert.equal(summary.errors, 1);
  assert.equal(summary.rps, 3); // 5 requests in 2 s, rounded
  assert.equal(summary.p50Ms, 3);
  assert.equal(summary.maxMs, 5);
});

Deno.test("[bench] runLoad counts every answer that is not 200 as an error", async () => {
  let n = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("x", { status: n++ % 2 ? 200 : 503 }),
  );
  const run = await runLoad(`http://127.0.0.1:${server.addr.port}/`, {
    concurrency: 2,
    durationMs: 200,
  });
  assert.ok(run.requests > 0);
  assert.equal(run.latencies.length, run.requests);
  assert.ok(run.errors > 0 && run.errors < run.requests);
  assert.equal(run.firstError, "status 503");
});
