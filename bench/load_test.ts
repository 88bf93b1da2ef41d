import assert from "node:assert/strict";
import {
  assertLoopback,
  type LoadRequest,
  percentile,
  runAtRate,
  runLoad,
  summarize,
} from "./load.ts";

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

/** A loopback server that counts the requests and connections it answers. */
function countingServer(handler: (request: Request) => Response | Promise<Response>) {
  const seen = { requests: 0, ports: new Set<number>() };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request, info) => {
      seen.requests++;
      seen.ports.add(info.remoteAddr.port);
      return await handler(request);
    },
  );
  return { server, seen, url: `http://127.0.0.1:${server.addr.port}` };
}

const clients = ["lean", "fetch"] as const;
const big = "x".repeat(200_000);

Deno.test("[bench] runLoad answers alike with the lean client and fetch", async (t) => {
  const cases: {
    name: string;
    handler: (request: Request) => Response | Promise<Response>;
    target: (url: string) => string | (() => LoadRequest);
    errors: "none" | "all";
    firstError?: string;
  }[] = [
    { name: "GET", handler: () => new Response("ok"), target: (u) => `${u}/a?b=1`, errors: "none" },
    {
      name: "404 counts as an error",
      handler: () => new Response("no", { status: 404 }),
      target: (u) => `${u}/missing`,
      errors: "all",
      firstError: "status 404",
    },
    {
      name: "POST with a body",
      handler: async (request) => {
        const body = await request.text();
        const right = request.method === "POST" && body === '{"a":"é"}' &&
          request.headers.get("content-type") === "application/json";
        return new Response(null, { status: right ? 204 : 400 });
      },
      target: (u) => () => ({
        url: `${u}/things`,
        init: {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ a: "é" }),
        },
      }),
      errors: "none",
    },
    {
      name: "chunked answers",
      handler: () =>
        new Response(
          ReadableStream.from(["a".repeat(5000), "b", "c".repeat(70_000)])
            .pipeThrough(new TextEncoderStream()),
        ),
      target: (u) => `${u}/`,
      errors: "none",
    },
    {
      name: "answers larger than one read, mixed with small ones on one connection",
      handler: (request) =>
        new Response(new URL(request.url).pathname === "/big" ? big : "s", {
          headers: { "content-type": "text/plain" },
        }),
      target: (u) => {
        let i = 0;
        return () => ({ url: `${u}/${i++ % 2 ? "big" : "small"}` });
      },
      errors: "none",
    },
    {
      name: "HEAD",
      handler: () => new Response(big),
      target: (u) => () => ({ url: `${u}/`, init: { method: "HEAD" } }),
      errors: "none",
    },
  ];
  for (const c of cases) {
    for (const client of clients) {
      await t.step(`${c.name} (${client})`, async () => {
        const { server, seen, url } = countingServer(c.handler);
        await using _ = server;
        const run = await runLoad(c.target(url), { concurrency: 4, durationMs: 150, client });
        assert.ok(run.requests > 0);
        assert.equal(seen.requests, run.requests);
        assert.equal(run.latencies.length, run.requests);
        assert.equal(run.errors, c.errors === "all" ? run.requests : 0, run.firstError);
        assert.equal(run.firstError, c.firstError);
        // Kept alive: one connection per worker (fetch's pool may open a few more).
        if (client === "lean") assert.ok(seen.ports.size <= 4, `${seen.ports.size} connections`);
      });
    }
  }
});

Deno.test("[bench] runLoad reconnects when the server closes each connection", async (t) => {
  for (const client of clients) {
    await t.step(client, async () => {
      const { server, seen, url } = countingServer(() =>
        new Response("bye", { headers: { connection: "close" } })
      );
      await using _ = server;
      const run = await runLoad(`${url}/`, { concurrency: 2, durationMs: 150, client });
      assert.ok(run.requests > 2);
      assert.equal(run.errors, 0, run.firstError);
      assert.equal(seen.requests, run.requests);
      assert.equal(seen.ports.size, run.requests); // a new connection for every request
    });
  }
});

Deno.test("[bench] runLoad reports a refused connection as an error", async () => {
  const { server, url } = countingServer(() => new Response("ok"));
  await server.shutdown();
  const run = await runLoad(`${url}/`, { concurrency: 1, durationMs: 50 });
  assert.ok(run.requests > 0);
  assert.equal(run.errors, run.requests);
  assert.match(run.firstError ?? "", /refused/i);
});

Deno.test("[bench] runLoad refuses a target off this machine", async () => {
  await assert.rejects(runLoad("http://10.0.0.1/", { durationMs: 10 }), /loopback/);
  await assert.rejects(
    runLoad(() => ({ url: "http://example.com/" }), { durationMs: 10 }),
    /loopback/,
  );
});

Deno.test("[bench] runAtRate starts requests on schedule, not faster than the rate", async () => {
  const { server, seen } = countingServer(() => new Response("x"));
  await using _ = server;
  const began = performance.now();
  const run = await runAtRate(`http://127.0.0.1:${server.addr.port}/`, {
    ratePerSecond: 200,
    durationMs: 500,
    connections: 8,
  });
  assert.equal(run.requests, 100);
  assert.equal(seen.requests, 100);
  assert.equal(run.errors, 0);
  // The last request is due 495 ms after the start: the run cannot end sooner.
  assert.ok(performance.now() - began >= 495);
  assert.ok(seen.ports.size <= 8);
});

Deno.test("[bench] runAtRate charges a server's queue to the server", async () => {
  // One connection, a request due every 10 ms, each answered after 40 ms: request k waits for
  // the k before it and ends 40(k+1) ms after the start at the earliest, 30k + 40 ms after its
  // due time. Timed from its send it would look like 40 ms every time.
  const { server } = countingServer(async () => {
    await new Promise((resolve) => setTimeout(resolve, 40));
    return new Response("x");
  });
  await using _ = server;
  const run = await runAtRate(`http://127.0.0.1:${server.addr.port}/`, {
    ratePerSecond: 100,
    durationMs: 300,
    connections: 1,
  });
  assert.equal(run.requests, 30);
  const slowest = Math.max(...run.latencies);
  assert.ok(slowest >= 30 * 29 + 40, `the last request waited ${slowest} ms`);
  assert.ok(Math.min(...run.latencies) >= 40);
});
