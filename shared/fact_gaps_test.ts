import assert from "node:assert/strict";
import type { Status } from "@nats-io/nats-core";
import { Bus } from "./bus.ts";
import { emptyOnMissedFacts } from "./fact_gaps.ts";
import { TaggedEntries } from "./tagged_entries.ts";
import { eventually } from "@testing/eventually.ts";
import { startNatsCluster } from "@testing/nats_cluster.ts";
import { recordingLogger } from "./testing.ts";

/**
 * A bus on a one-node cluster of its own, a keeper for it, and how many of each status its
 * connection has reported.
 */
async function keeperOnOwnNode() {
  const cluster = await startNatsCluster(1);
  const [node] = cluster.nodes;
  const bus = await Bus.connect({ url: node.url, prefix: "t", logger: recordingLogger() });
  const kept = new TaggedEntries({ memoryMs: 1_000, onRemove: () => {} });
  const seen: Record<string, number> = {};
  (async () => {
    for await (const s of bus.nc.status() as AsyncIterable<Status>) {
      seen[s.type] = (seen[s.type] ?? 0) + 1;
    }
  })();
  return { cluster, node, bus, kept, seen };
}

Deno.test({
  name: "[facts] emptyOnMissedFacts logs a NATS outage once and the resume once, not per attempt",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { cluster: own, node, bus, kept, seen } = await keeperOnOwnNode();
  await using cluster = own;
  const log = recordingLogger();
  const following = emptyOnMissedFacts(bus, kept, log, "cache");
  try {
    await cluster.kill(node.name);
    // nats.js reports each attempt, one every 250 ms: several while the server is away.
    await eventually(() => (seen.reconnecting ?? 0) >= 4, 10_000, "reconnect attempts");
    assert.ok(kept.suspended, "suspended while NATS is away");
    assert.deepEqual(log.lines.map((l) => l.message), [
      "cache emptied and suspended: the fact subscription may miss facts",
    ]);
    await cluster.revive(node.name);
    await eventually(() => !kept.suspended, 10_000, "the resume");
    assert.deepEqual(log.lines.map((l) => l.message), [
      "cache emptied and suspended: the fact subscription may miss facts",
      "cache resumed, empty: the fact subscription is back",
    ]);
  } finally {
    // Not a drain: with the server away it would fail and hide the assertion's message.
    await bus.nc.close();
    await following;
  }
});

// Found by a review: a keeper that stopped following the facts (unsubscribed) was still followed
// here, so a NATS reconnect resumed it: it served again what no fact would drop any more.
Deno.test({
  name: "[facts] emptyOnMissedFacts stopped by its signal leaves its keeper suspended for good",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { cluster: own, node, bus, kept, seen } = await keeperOnOwnNode();
  await using cluster = own;
  const stopped = new AbortController();
  const following = emptyOnMissedFacts(bus, kept, recordingLogger(), "cache", stopped.signal);
  let ended = false;
  following.then(() => ended = true, () => ended = true);
  try {
    stopped.abort();
    // Only the follower resumes its keeper: ended, it resumes nothing, whenever a reconnect comes.
    // A pause after the reconnect instead proved nothing once a slow follower's resume came later.
    await eventually(() => ended, 2_000, "the follower to end once stopped");
    assert.ok(kept.suspended, "suspended once stopped");
    await cluster.kill(node.name);
    await cluster.revive(node.name);
    await eventually(() => (seen.reconnect ?? 0) >= 1, 10_000, "the reconnect");
    assert.ok(kept.suspended, "still suspended after the reconnect");
  } finally {
    await bus.nc.close();
    await following;
  }
});
