import assert from "node:assert/strict";
import { route } from "@shared/bus_endpoints.ts";
import { catalog } from "@shared/subjects.ts";
import { testGateway } from "./_test_utils.ts";
import { JOIN_WAIT_MS } from "./coalesce.ts";

const PAGE = "/v1/event-topics?page%5Bsize%5D=5";

// A scale-in review (2026-12-06): a catalog instance killed while it read a topic list took the
// shared fetch of that page with it; the fetch answered at the request timeout (a 504), and every
// anonymous reader of the page shared it until then (76 of 76 in 5 s), the other instances idle.
Deno.test("[gateway] a shared fetch lost on the bus holds the page's readers no longer than the join wait", async () => {
  await using gw = await testGateway({ env: { REQUEST_TIMEOUT_MS: "3000" } });
  let calls = 0;
  let release = () => {};
  const lost = new Promise<void>((resolve) => release = resolve);
  await gw.serve("catalog", [
    route(catalog.eventTopics.list, async () => {
      // The first request is lost with its instance: never answered in time.
      if (++calls === 1) await lost;
      return { status: 200, body: { data: [] } };
    }),
  ]);
  try {
    const began = performance.now();
    const first = gw.app.request(PAGE);
    // Readers every 100 ms for 1.5 s: the first ones joined the lost fetch.
    const readers: Promise<{ sentAt: number; status: number; tookMs: number }>[] = [];
    for (let i = 0; i < 15; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const sentAt = performance.now() - began;
      readers.push((async () => {
        const response = await gw.app.request(PAGE);
        await response.body?.cancel();
        return { sentAt, status: response.status, tookMs: performance.now() - began - sentAt };
      })());
    }
    const answered = await Promise.all(readers);
    const afterWait = answered.filter((r) => r.sentAt > JOIN_WAIT_MS + 50);
    assert.ok(afterWait.length >= 8, `${afterWait.length} readers came after the join wait`);
    for (const reader of afterWait) {
      assert.equal(reader.status, 200, JSON.stringify(reader));
      assert.ok(reader.tookMs < 1000, `answered in ${reader.tookMs} ms`);
    }
    assert.equal((await first).status, 504, "the lost fetch itself still times out");
  } finally {
    release();
  }
});
