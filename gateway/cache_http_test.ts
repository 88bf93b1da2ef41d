/**
 * The response cache as the caches in front of the gateway (a CDN, a browser, a proxy) rely on
 * it (RFC 9110 §8.8 and §13, RFC 9111), against the real catalog, NATS and Postgres.
 */
import assert from "node:assert/strict";
import { startTestSystem } from "@testing/system.ts";
import { secondGateway } from "./_test_utils.ts";
import { settledCache, shortSettle } from "@testing/cache_settle.ts";

Deno.test("[gateway] every gateway answers a URL with the same bytes, whatever URL filled its cache", async () => {
  await using system = await startTestSystem({ env: shortSettle });
  await system.createTopic("Astronomy");
  await settledCache(system);
  const other = (await secondGateway(system)).call;
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

Deno.test("[gateway] conditional requests and request directives, as the README says", async (t) => {
  await using system = await startTestSystem({ env: shortSettle });
  await system.createTopic("Botany");
  await settledCache(system);
  const path = "/v1/event-topics";
  const first = await system.call("GET", path);
  const etag = first.headers.get("ETag")!;
  await t.step("a 304 carries what its 200 would: ETag, Cache-Control, Vary; no body", async () => {
    for (const tag of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const reply = await system.call("GET", path, { headers: { "If-None-Match": tag } });
      assert.equal(reply.status, 304, tag);
      assert.equal(reply.text, "");
      assert.equal(reply.headers.get("ETag"), etag);
      assert.equal(reply.headers.get("Cache-Control"), "public, no-cache");
      assert.equal(reply.headers.get("Vary"), "Authorization");
      assert.equal(reply.headers.get("Content-Length"), null);
    }
  });
  await t.step("a malformed or other validator, and If-Modified-Since, give the 200", async () => {
    const conditions: Record<string, string>[] = [
      { "If-None-Match": etag.slice(1, -1) },
      { "If-None-Match": '"other"' },
      { "If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT" },
    ];
    for (const headers of conditions) {
      const reply = await system.call("GET", path, { headers });
      assert.equal(reply.status, 200, JSON.stringify(headers));
      assert.equal(reply.text, first.text);
    }
  });
  await t.step("If-None-Match: * on a 404 is the 404", async () => {
    const missing = "/v1/event-topics/999999";
    await system.call("GET", missing);
    const reply = await system.call("GET", missing, { headers: { "If-None-Match": "*" } });
    assert.equal(reply.status, 404);
    assert.equal(reply.headers.get("Cache-Control"), "public, no-cache");
    assert.equal(reply.headers.get("ETag"), null);
  });
  await t.step("no-cache, max-age=0, no-store and Pragma are answered from the cache", async () => {
    const directives: Record<string, string>[] = [
      { "Cache-Control": "no-cache", "Pragma": "no-cache" },
      { "Cache-Control": "max-age=0" },
      { "Cache-Control": "no-store" },
    ];
    for (const headers of directives) {
      const reply = await system.call("GET", path, { headers });
      assert.equal(reply.headers.get("X-Cache"), "HIT", JSON.stringify(headers));
      assert.equal(reply.headers.get("ETag"), etag);
    }
  });
});
