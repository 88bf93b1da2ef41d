import assert from "node:assert/strict";
import { metrics } from "@shared/metrics.ts";
import { eventually } from "@testing/eventually.ts";
import { JSONAPI, token, topicsGateway } from "./_test_utils.ts";

const BASE = "http://gateway.test/v1/event-topics";

/** `topicsGateway` (response cache on, `env` added), and its anonymous reads. */
async function cachingGateway(env: Record<string, string> = {}) {
  const system = await topicsGateway({ env });
  return {
    ...system,
    /** Status and `X-Cache` of an anonymous read of `url` through the gateway's `fetch`. */
    async read(url = BASE, headers: Record<string, string> = {}) {
      const request = new Request(url, { headers: { Accept: JSONAPI, ...headers } });
      const response = await system.gateway.fetch(request);
      await response.body?.cancel();
      return { status: response.status, cache: response.headers.get("X-Cache") };
    },
  };
}

/** The value of one series of a family in this process's registry (0 when it has none yet). */
async function figure(name: string, labels: Record<string, string> = {}): Promise<number> {
  const family = (await metrics.snapshot()).find((f) => f.name === name);
  const series = family?.series.find((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  return series?.value ?? 0;
}

Deno.test("[gateway] oe_cache_lookups counts misses and hits, 304s and the short way's included", async () => {
  await using gw = await cachingGateway();
  const before = {
    hit: await figure("oe_cache_lookups", { result: "hit" }),
    miss: await figure("oe_cache_lookups", { result: "miss" }),
    stored: await figure("oe_cache_stores", { result: "stored" }),
  };
  assert.equal((await gw.read()).cache, "MISS");
  assert.equal((await gw.read()).cache, "HIT", "the full path's hit");
  const short = gw.gateway.hits!.answer(new Request(BASE, { headers: { Accept: JSONAPI } }));
  assert.ok(short, "the short way answers");
  const etag = short.headers.get("ETag")!;
  await short.body?.cancel();
  assert.equal((await gw.read(BASE, { "If-None-Match": etag })).status, 304);

  assert.equal(await figure("oe_cache_lookups", { result: "miss" }), before.miss + 1);
  assert.equal(await figure("oe_cache_lookups", { result: "hit" }), before.hit + 3);
  assert.equal(await figure("oe_cache_stores", { result: "stored" }), before.stored + 1);
  assert.equal(await figure("oe_cache_entries"), 1);
  assert.ok(await figure("oe_cache_bytes") > 0);
});

Deno.test("[gateway] oe_cache_invalidated_entries counts what a write and a fact drop", async (t) => {
  await using gw = await cachingGateway();
  const dropped = () => figure("oe_cache_invalidated_entries");

  await t.step("a write relayed by the gateway", async () => {
    await gw.read();
    const before = await dropped();
    const created = await gw.gateway.fetch(
      new Request(BASE, {
        method: "POST",
        headers: { Authorization: `JWT ${await token("1")}`, "Content-Type": JSONAPI },
        body: JSON.stringify({ data: { type: "event-topic", attributes: { name: "N" } } }),
      }),
    );
    assert.equal(created.status, 201);
    await created.body?.cancel();
    assert.equal(await dropped(), before + 1);
    assert.equal(await figure("oe_cache_entries"), 0);
  });

  await t.step("a fact heard on the bus", async () => {
    assert.equal((await gw.read()).cache, "MISS");
    const before = await dropped();
    const evicted = await figure("oe_cache_evictions");
    const fact = { type: "catalog.event-topic.updated", data: { id: "1" } };
    gw.bus.nc.publish(gw.bus.subject(`facts.${fact.type}`), JSON.stringify(fact));
    await eventually(async () => await dropped() === before + 1, 2_000, "the fact to drop it");
    assert.equal(await figure("oe_cache_evictions"), evicted, "an invalidation is no eviction");
  });
});

Deno.test("[gateway] oe_cache_evictions counts entries pushed out by a small CACHE_MAX_BYTES", async () => {
  const maxBytes = 6_000;
  await using gw = await cachingGateway({ CACHE_MAX_BYTES: String(maxBytes) });
  const evicted = await figure("oe_cache_evictions");
  const tooLarge = await figure("oe_cache_stores", { result: "too_large" });
  for (const size of [4, 5, 6, 7]) {
    assert.equal((await gw.read(`${BASE}?page%5Bsize%5D=${size}`)).cache, "MISS");
  }
  assert.ok(await figure("oe_cache_evictions") > evicted, "older pages made room");
  assert.ok(await figure("oe_cache_entries") < 4);
  assert.ok(await figure("oe_cache_bytes") <= maxBytes);
  assert.equal(await figure("oe_cache_max_bytes"), maxBytes);

  await gw.read(`${BASE}?page%5Bsize%5D=100`);
  assert.equal(await figure("oe_cache_stores", { result: "too_large" }), tooLarge + 1);
});

Deno.test("[gateway] oe_cache_flushes counts the cache emptied on suspend and on reconnect", async () => {
  await using gw = await cachingGateway();
  const flushes = (reason: string) => figure("oe_cache_flushes", { reason });
  const before = { suspend: await flushes("suspend"), reconnect: await flushes("reconnect") };
  assert.equal((await gw.read()).cache, "MISS");
  const back = (async () => {
    for await (const status of gw.bus.nc.status()) if (status.type === "reconnect") return;
  })();
  await gw.bus.nc.reconnect();
  await back;
  await eventually(
    async () => await flushes("reconnect") === before.reconnect + 1,
    2_000,
    "the reconnect to be counted",
  );
  assert.equal(await flushes("suspend"), before.suspend + 1, "once per outage");
  assert.equal(await figure("oe_cache_entries"), 0);
});
