/**
 * Instances that stop say so (shared/bus.ts's INSTANCE_LEFT), and /health and /metrics wait for
 * them no more (gateway/health.ts's `forgetLeavers`). A scale-in review (2026-12-06) saw the two
 * checks after any instance left take the whole second, and two scrapes two.
 */
import assert from "node:assert/strict";
import { Bus, INSTANCE_LEFT } from "@shared/bus.ts";
import { createLogger } from "@shared/log.ts";
import { testBus } from "@shared/testing.ts";
import { askInstances, forgetLeavers } from "./health.ts";

// The cap waits are real: 600 ms tells an ask that waited for a silent instance from one that
// ended with the tail (50 ms); under 450 ms leaves a loaded CI its margin.
const options = { maxWaitMs: 600, recentMs: 60_000, tailMs: 50 };
const WAITED_MS = 550;
const DID_NOT_WAIT_MS = 450;

async function timedAsk(bus: Bus) {
  const began = performance.now();
  const answers = await askInstances(bus, "PING", "catalog", options);
  return { ids: [...answers.keys()].sort(), ms: performance.now() - began };
}

Deno.test("[gateway] an instance that stopped is waited for by no check after it", async () => {
  await using b = await testBus();
  forgetLeavers(b.bus);
  const logger = createLogger("test", "error");
  const connect = () => Bus.connect({ url: b.natsUrl, prefix: b.prefix, logger });
  const [staying, leaving] = await Promise.all([connect(), connect()]);
  await using _instances = {
    [Symbol.asyncDispose]: async () => {
      await Promise.all([staying, leaving].map((bus) => bus.close()));
    },
  };
  const stays = staying.serve({ name: "catalog", version: "1.0.0" }, []);
  const goes = leaving.serve({ name: "catalog", version: "1.0.0" }, []);
  await Promise.all([staying.nc.flush(), leaving.nc.flush()]);
  assert.deepEqual((await timedAsk(b.bus)).ids, [goes.id, stays.id].sort());

  await goes.stop();
  await leaving.nc.flush();
  for (let i = 0; i < 2; i++) {
    const { ids, ms } = await timedAsk(b.bus);
    assert.deepEqual(ids, [stays.id], `check ${i + 1} counts the one left`);
    assert.ok(ms < DID_NOT_WAIT_MS, `check ${i + 1} did not wait for the one gone (${ms} ms)`);
  }
});

Deno.test("[gateway] an ask waiting for an instance stops waiting once it says it left", async () => {
  await using b = await testBus();
  forgetLeavers(b.bus);
  const answering = new Set(["stays", "goes"]);
  const subs = ["stays", "goes"].map((id) =>
    b.bus.nc.subscribe("$SRV.PING.catalog", {
      callback: (_error, msg) => {
        if (!answering.has(id)) return;
        msg.respond(JSON.stringify({ id, name: "catalog", metadata: { prefix: b.prefix } }));
      },
    })
  );
  try {
    assert.deepEqual((await timedAsk(b.bus)).ids, ["goes", "stays"]);
    // Silent from now on (stopping: its answers drained), then it says it left, mid-ask.
    answering.delete("goes");
    const ask = timedAsk(b.bus);
    setTimeout(() => {
      const left = JSON.stringify({ name: "catalog", id: "goes" });
      b.bus.nc.publish(b.bus.subject(INSTANCE_LEFT), left);
    }, 100);
    const { ids, ms } = await ask;
    assert.deepEqual(ids, ["stays"]);
    assert.ok(ms < DID_NOT_WAIT_MS, `the ask ended once it left (${ms} ms)`);
    // A leaver of another service, or of nothing known, changes nothing.
    b.bus.nc.publish(b.bus.subject(INSTANCE_LEFT), JSON.stringify({ name: "audit", id: "stays" }));
    b.bus.nc.publish(b.bus.subject(INSTANCE_LEFT), "not json");
    answering.delete("stays");
    const silent = await timedAsk(b.bus);
    assert.deepEqual(silent.ids, []);
    assert.ok(silent.ms >= WAITED_MS, `the one still known is waited for (${silent.ms} ms)`);
  } finally {
    subs.forEach((sub) => sub.unsubscribe());
  }
});
