import assert from "node:assert/strict";
import { route } from "@shared/bus_endpoints.ts";
import { loadConfig } from "@shared/config.ts";
import { metrics } from "@shared/metrics.ts";
import { catalog } from "@shared/subjects.ts";
import { type RecordedLine, recordingLogger, testBus } from "@shared/testing.ts";
import { eventually } from "@testing/eventually.ts";
import { JSONAPI, SECRET, token, Wire } from "./_test_utils.ts";
import { createGateway } from "./app.ts";
import { serveGuarded } from "./slow_clients.ts";

/** The lines `logger` kept of one kind: the access log's ("request"), or warnings. */
function linesOf(logger: { lines: RecordedLine[] }, kind: "request" | "warn"): RecordedLine[] {
  return logger.lines.filter((line) =>
    kind === "warn" ? line.level === "warn" : line.message === kind
  );
}

/**
 * A gateway in front of a stand-in catalog whose event page names its caller (so one caller's
 * answer cannot pass for another's), refuses user 3, answers user 4 as a revoked token (401),
 * and waits `?delay` ms when asked; served
 * twice: `plain` relays everything to `Deno.serve` (the reference bytes), `relaying` answers what
 * it may itself. `calls` counts what reached `Deno.serve` behind `relaying`.
 */
async function signedGateway(env: Record<string, string> = {}) {
  const gatewayBus = await testBus();
  const serviceBus = await testBus(gatewayBus.prefix);
  const asked: string[] = [];
  const serve = () =>
    serviceBus.bus.serve({ name: "catalog", version: "0.0.1" }, [
      route(catalog.events.get, async (request) => {
        asked.push(request.requestId);
        await new Promise((resolve) => setTimeout(resolve, Number(request.query.delay ?? 0)));
        if (request.query.status !== undefined) {
          // A status of the service's choosing (one a Response may not carry with a body, say).
          const attributes = { caller: request.actor?.id ?? null };
          return {
            status: Number(request.query.status),
            body: { data: { type: "event", id: "7", attributes } },
          };
        }
        if (request.actor?.id === "3") {
          return { status: 403, body: { errors: [{ status: "403", title: "Forbidden" }] } };
        }
        if (request.actor?.id === "4") {
          return { status: 401, body: { errors: [{ status: "401", title: "Unauthorized" }] } };
        }
        const attributes = { caller: request.actor?.id ?? null, sort: request.query.sort ?? "" };
        return {
          status: 200,
          body: { data: { type: "event", id: request.params.id, attributes } },
        };
      }),
    ]);
  let service = serve();
  await serviceBus.bus.nc.flush();
  const logger = recordingLogger();
  const config = loadConfig({ JWT_SECRET: SECRET, BUS_PREFIX: gatewayBus.prefix, ...env });
  const gateway = createGateway({ bus: gatewayBus.bus, config, logger });
  const calls = { relaying: 0 };
  const listen = { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 5_000 };
  const plain = await serveGuarded(listen, gateway.fetch);
  const relaying = await serveGuarded({ ...listen, answer: gateway.answer }, (request) => {
    calls.relaying++;
    return gateway.fetch(request);
  });
  return {
    gateway,
    logger,
    calls,
    asked,
    plain,
    relaying,
    async stopService() {
      await service.stop();
    },
    async restartService() {
      service = serve();
      await serviceBus.bus.nc.flush();
    },
    async [Symbol.asyncDispose]() {
      // Either may have been shut down by the test already.
      await plain.shutdown().catch(() => {});
      await relaying.shutdown().catch(() => {});
      await service.stop().catch(() => {});
      await serviceBus[Symbol.asyncDispose]();
      await gatewayBus[Symbol.asyncDispose]();
    },
  };
}

/** A signed-in GET of event 7 (`target` may change the path and query). */
function signedHead(jwt: string, more = "", target = "/v1/events/7?sort=name"): string {
  return `GET ${target} HTTP/1.1\r\nHost: x\r\nAccept: ${JSONAPI}\r\n` +
    `Authorization: JWT ${jwt}\r\nX-Request-Id: wire\r\n${more}\r\n`;
}

/** The count of `oe_http_requests` for one method, route and status. */
async function counted(route: string, status: string): Promise<number> {
  const family = (await metrics.snapshot()).find((f) => f.name === "oe_http_requests");
  const series = family?.series.find((s) =>
    s.labels.method === "GET" && s.labels.route === route && s.labels.status === status
  );
  return series?.value ?? 0;
}

Deno.test("[gateway] the relay answers a repeated signed-in read itself, with Deno.serve's bytes", async (t) => {
  await using gw = await signedGateway();
  const { calls, logger } = gw;
  using wire = await Wire.open(gw.relaying.port);
  using reference = await Wire.open(gw.plain.port);
  const alice = await token("1");
  const first = await wire.exchange(signedHead(alice));
  assert.match(first, /^HTTP\/1\.1 200 OK\r\n[^]*"caller":"1"/);
  assert.equal(calls.relaying, 1, "the first read took the full path");
  assert.equal(gw.gateway.signed.size, 1, "and was remembered");
  const etag = /ETag: ("[^"]*")/.exec(first)![1];

  const variants: [string, string][] = [
    ["a read", signedHead(alice)],
    ["a revalidation (304)", signedHead(alice, `If-None-Match: ${etag}\r\n`)],
    ["a stale validator", signedHead(alice, `If-None-Match: "other"\r\n`)],
    ["another caller (its own answer)", signedHead(await token("2"))],
    ["a refused caller (the service's 403)", signedHead(await token("3"))],
    ["a revoked token (the service's 401, with its challenge)", signedHead(await token("4"))],
  ];
  for (const [what, head] of variants) {
    await t.step(`${what}: the bytes Deno.serve sends, the same access log line`, async () => {
      // The reference first: it verifies the caller's token, as the full path does for anyone.
      const expected = await reference.exchange(head);
      if (expected.startsWith("HTTP/1.1 401 ")) {
        assert.match(expected, /\r\nWWW-Authenticate: JWT realm="Open Event"\r\n/);
      }
      const lines = linesOf(logger, "request").length;
      const before = calls.relaying;
      assert.equal(await wire.exchange(head), expected);
      assert.equal(calls.relaying, before, "answered by the relay");
      const [slowLine, fastLine] = linesOf(logger, "request").slice(lines - 1);
      assert.deepEqual({ ...fastLine, ms: 0 }, { ...slowLine, ms: 0 });
    });
  }

  await t.step("each caller gets its own answer", async () => {
    assert.match(await wire.exchange(signedHead(await token("2"))), /"caller":"2"/);
    assert.match(await wire.exchange(signedHead(alice)), /"caller":"1"/);
  });

  await t.step("a fresh request id when none is given, passed to the service", async () => {
    const head = signedHead(alice).replace("X-Request-Id: wire\r\n", "");
    const answer = await wire.exchange(head);
    const id = /\r\nX-Request-Id: ([0-9a-f-]{36})\r\n/.exec(answer)?.[1];
    assert.ok(id, answer);
    assert.equal(gw.asked.at(-1), id);
  });

  await t.step("counted under the full path's route label", async () => {
    const before = await counted("/v1/events/:id", "200");
    const relayed = calls.relaying;
    await wire.exchange(signedHead(alice));
    assert.equal(calls.relaying, relayed);
    assert.equal(await counted("/v1/events/:id", "200"), before + 1);
  });
});

Deno.test("[gateway] the short way of signed-in reads leaves the rest to the full path", async (t) => {
  await using gw = await signedGateway();
  const { calls } = gw;
  using wire = await Wire.open(gw.relaying.port);
  const alice = await token("1");
  await wire.exchange(signedHead(alice));

  const fullPath: [string, string, RegExp][] = [
    ["another query", signedHead(alice, "", "/v1/events/7?sort=other"), /"sort":"other"/],
    ["a token not verified yet", signedHead(await token("2")), /"caller":"2"/],
    ["a forged token", signedHead(await token("1", { secret: "other" })), /401 Unauthorized/],
    ["a cookie", signedHead(alice, "Cookie: a=b\r\n"), /"caller":"1"/],
    ["another Accept", signedHead(alice).replace(`Accept: ${JSONAPI}`, "Accept: */*"), /200 OK/],
    ["HEAD", signedHead(alice).replace("GET", "HEAD"), /200 OK/],
  ];
  for (const [what, head, expected] of fullPath) {
    await t.step(what, async () => {
      using own = await Wire.open(gw.relaying.port);
      const before = calls.relaying;
      await own.send(head);
      if (what === "HEAD") {
        // A HEAD answer has no body: read the head only.
        const buffer = new Uint8Array(4096);
        const n = await own.conn.read(buffer);
        assert.match(new TextDecoder().decode(buffer.subarray(0, n!)), expected);
      } else assert.match(await own.answer(), expected);
      assert.equal(calls.relaying, before + 1, "answered by Deno.serve");
    });
  }

  await t.step("a token that expired since it was verified: the full path's 401", async () => {
    // Made just after a second begins, so that it is good for most of a second: made at x.999 s,
    // it had expired by the first read (a CI run).
    await new Promise((resolve) => setTimeout(resolve, 1_010 - (Date.now() % 1000)));
    const soon = await token("1", { exp: Math.floor(Date.now() / 1000) + 1 });
    assert.match(await wire.exchange(signedHead(soon)), /200 OK/);
    const before = calls.relaying;
    assert.match(await wire.exchange(signedHead(soon)), /200 OK/);
    assert.equal(calls.relaying, before, "known and valid: the short way");
    await new Promise((resolve) => setTimeout(resolve, 2_100 - (Date.now() % 1000)));
    assert.match(await wire.exchange(signedHead(soon)), /^HTTP\/1\.1 401 Unauthorized/);
    assert.equal(calls.relaying, before + 1);
  });
});

Deno.test("[gateway] a signed-in read the relay forwards fails as the full path fails", async (t) => {
  await using gw = await signedGateway({ REQUEST_TIMEOUT_MS: "300" });
  const { calls, logger } = gw;
  using wire = await Wire.open(gw.relaying.port);
  using reference = await Wire.open(gw.plain.port);
  const alice = await token("1");
  await wire.exchange(signedHead(alice));
  const slow = signedHead(alice, "", "/v1/events/7?delay=600");
  await wire.exchange(slow).catch(() => {});

  await t.step("the service too slow: the same 504", async () => {
    const expected = await reference.exchange(slow);
    assert.match(expected, /^HTTP\/1\.1 504 Gateway Timeout/);
    const before = calls.relaying;
    const warnings = linesOf(logger, "warn").length;
    assert.equal(await wire.exchange(slow), expected);
    assert.equal(calls.relaying, before, "answered by the relay");
    assert.equal(linesOf(logger, "warn").length, warnings + 1, "logged as the full path logs it");
  });

  await t.step("no service at all: the same 503, and healed when it is back", async () => {
    await gw.stopService();
    const head = signedHead(alice);
    const expected = await reference.exchange(head);
    assert.match(expected, /^HTTP\/1\.1 503 Service Unavailable/);
    const before = calls.relaying;
    assert.equal(await wire.exchange(head), expected);
    assert.equal(calls.relaying, before);
    await gw.restartService();
    assert.match(await wire.exchange(head), /^HTTP\/1\.1 200 OK[^]*"caller":"1"/);
  });
});

Deno.test("[gateway] shutdown writes the signed-in reads the relay is answering", async () => {
  await using gw = await signedGateway();
  using wire = await Wire.open(gw.relaying.port);
  const alice = await token("1");
  const slow = signedHead(alice, "", "/v1/events/7?delay=300");
  await wire.exchange(slow);
  const before = gw.calls.relaying;
  const asked = gw.asked.length;
  await wire.send(slow);
  // Shut down while the service works on it (300 ms): a fixed 100 ms pause let a slow relay be
  // shut down before it had read the request, or answer it before the shutdown.
  await eventually(() => gw.asked.length > asked, 5_000, "the service asked", 5);
  const answered = wire.answer().catch((error) => String(error));
  await gw.relaying.shutdown();
  assert.match(await answered, /^HTTP\/1\.1 200 OK[^]*"caller":"1"/);
  assert.equal(gw.calls.relaying, before, "it was the relay's own answer");
});

Deno.test("[gateway] the short way of signed-in reads remembers a bounded number of requests", async () => {
  await using gw = await signedGateway();
  const signed = gw.gateway.signed;
  const read = {
    endpoint: catalog.events.get,
    params: { id: "7" },
    path: "/v1/events/7",
    query: {},
    successType: JSONAPI,
    route: "/v1/events/:id",
  };
  const get = (query: string) =>
    new Request(`http://x/v1/events/7?${query}`, { headers: { Authorization: "JWT t" } });
  for (let i = 0; i < 2_000; i++) signed.learn(get(`n=${i}`), read);
  assert.equal(signed.size, 2_000);
  signed.learn(get("n=last"), read);
  assert.equal(signed.size, 1, "past the limit the memory starts over");
  // Long, but short enough for a head the relay reads (8 KiB).
  for (let i = 0; i < 60; i++) signed.learn(get(`x=${"y".repeat(7_000)}${i}`), read);
  assert.ok(signed.size < 60, "long URLs count by their length");
  const before = signed.size;
  signed.learn(new Request("http://x/v1/events/7?anonymous"), read);
  signed.learn(
    new Request("http://x/v1/events/7?c", { headers: { Authorization: "JWT t", Cookie: "a=b" } }),
    read,
  );
  assert.equal(signed.size, before, "never a request the short way would not answer");
});

Deno.test("[gateway] a reply the full path cannot send is its 500 on the short way too, never a body after a 304", async (t) => {
  await using gw = await signedGateway();
  const alice = await token("1");
  for (const status of ["304", "205"]) {
    await t.step(`the service answers ${status} with a document`, async () => {
      using wire = await Wire.open(gw.relaying.port);
      using reference = await Wire.open(gw.plain.port);
      const head = signedHead(alice, "", `/v1/events/7?status=${status}`);
      await wire.exchange(head);
      const expected = await reference.exchange(head);
      assert.match(expected, /^HTTP\/1\.1 500 Internal Server Error/);
      const before = gw.calls.relaying;
      assert.equal(await wire.exchange(head), expected);
      assert.equal(gw.calls.relaying, before, "answered by the relay");
      // The connection still reads as HTTP: the next answer is whole and its own.
      assert.match(await wire.exchange(signedHead(alice)), /^HTTP\/1\.1 200 OK[^]*"caller":"1"/);
    });
  }
});

Deno.test("[gateway] a URL longer than any head the relay reads is never remembered", async () => {
  await using gw = await signedGateway();
  const alice = await token("1");
  using wire = await Wire.open(gw.relaying.port);
  await wire.exchange(signedHead(alice));
  assert.equal(gw.gateway.signed.size, 1);
  // Deno.serve takes targets of up to 64 KiB; the relay reads heads of up to 8 KiB. A few long
  // URLs from one signed-in caller must not make the memory start over for everyone.
  for (let i = 0; i < 4; i++) {
    using own = await Wire.open(gw.relaying.port);
    const long = signedHead(alice, "", `/v1/events/7?sort=${"y".repeat(60_000)}${i}`);
    assert.match(await own.exchange(long), /^HTTP\/1\.1 200 OK/);
  }
  assert.equal(gw.gateway.signed.size, 1, "the short read is still remembered");
  const before = gw.calls.relaying;
  assert.match(await wire.exchange(signedHead(alice)), /"caller":"1"/);
  assert.equal(gw.calls.relaying, before, "and answered by the relay");
});

Deno.test("[gateway] without the relay, Deno.serve's handler takes the short way, with the same bytes", async (t) => {
  await using gw = await signedGateway();
  const listen = { hostname: "127.0.0.1", port: 0, onListen: () => {} };
  let appCalls = 0;
  // What the gateway serves with HEADER_TIMEOUT_MS=0, and the full path alone beside it.
  const short = Deno.serve(listen, (request) => {
    const answered = gw.gateway.signed.answer(request);
    if (answered) return answered;
    appCalls++;
    return gw.gateway.fetch(request);
  });
  const full = Deno.serve(listen, (request) => gw.gateway.app.fetch(request));
  try {
    using wire = await Wire.open(short.addr.port);
    using reference = await Wire.open(full.addr.port);
    const alice = await token("1");
    assert.match(await wire.exchange(signedHead(alice)), /"caller":"1"/);
    assert.equal(appCalls, 1, "the first read took the full path");
    const etag = /ETag: ("[^"]*")/.exec(await reference.exchange(signedHead(alice)))![1];
    const slow = signedHead(alice, "", "/v1/events/7?delay=50");
    await wire.exchange(slow);
    const variants: [string, string][] = [
      ["a read", signedHead(alice)],
      ["a revalidation (304)", signedHead(alice, `If-None-Match: ${etag}\r\n`)],
      ["another caller", signedHead(await token("2"))],
      ["a refused caller", signedHead(await token("3"))],
      ["a revoked token", signedHead(await token("4"))],
    ];
    for (const [what, head] of variants) {
      await t.step(what, async () => {
        const expected = await reference.exchange(head);
        if (expected.startsWith("HTTP/1.1 401 ")) {
          assert.match(expected, /\r\nWWW-Authenticate: JWT realm="Open Event"\r\n/);
        }
        const before = appCalls;
        assert.equal(await wire.exchange(head), expected);
        assert.equal(appCalls, before, "answered the short way");
      });
    }
    await t.step("no service: the same 503", async () => {
      await gw.stopService();
      const expected = await reference.exchange(slow);
      assert.match(expected, /^HTTP\/1\.1 503 /);
      const before = appCalls;
      assert.equal(await wire.exchange(slow), expected);
      assert.equal(appCalls, before);
    });
  } finally {
    await short.shutdown();
    await full.shutdown();
  }
});

Deno.test("[gateway] an absolute-form target never decides the query of another caller's signed-in read", async () => {
  await using gw = await signedGateway();
  const mallory = await token("2");
  const alice = await token("1");
  using wire = await Wire.open(gw.relaying.port);
  // Hono reads the path after the first `/` past the scheme: `/v1/events/7`, with `sort=evil`.
  const poisoned = signedHead(mallory, "", "http://x?sort=evil&a=/v1/events/7");
  for (let i = 0; i < 2; i++) {
    await wire.send(poisoned);
    assert.match(await wire.answer(), /^HTTP\/1\.1 400 /, "its path is /");
  }
  for (let i = 0; i < 3; i++) {
    await wire.send(signedHead(alice, "", "/v1/events/7"));
    const body = JSON.parse((await wire.answer()).split("\r\n\r\n")[1]);
    assert.deepEqual(body.data.attributes, { caller: "1", sort: "" }, "alice's own query");
  }
});
