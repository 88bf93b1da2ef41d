import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Bus } from "@shared/bus.ts";
import { ensureFactStream } from "@shared/fact_streams.ts";
import { facts } from "@shared/subjects.ts";
import { recordingLogger } from "@shared/testing.ts";
import { eventually } from "@testing/eventually.ts";
import { factBus } from "@testing/fact_bus.ts";
import { exampleFact } from "@testing/facts.ts";
import { leadStreamOn, startNatsCluster, waitForJetStream } from "@testing/nats_cluster.ts";
import { startRoutedNodes } from "@testing/nats_partition.ts";
import { connectNats } from "@shared/nats_transport.ts";
import { ResponseCache } from "./cache.ts";
import { invalidateOnFacts } from "./cache_invalidation.ts";
import { speaksForStream } from "./unheard_facts.ts";

const UNHEARD = "cache emptied: the fact stream holds facts this gateway did not hear";
const SUSPENDED =
  "cache suspended: the fact stream cannot be read to tell whether facts were missed";
const RESUMED = "cache resumed, empty: the fact stream can be read again";

// A partition between NATS nodes loses facts on their way to a gateway whose own connection stays
// up: the stream stores them, the gateway never hears them. Here the stream takes a message from
// another stream it sources (stored, never published on the fact subjects), which leaves the
// gateway in the same state.
Deno.test("[gateway] facts the stream stored and the gateway never heard empty its cache", async () => {
  await using b = await factBus({ ensureStream: true });
  const log = recordingLogger();
  const cache = new ResponseCache({ maxBytes: 1 << 20 });
  invalidateOnFacts(b.bus, cache, log, { unheardCheckMs: 100 });
  await b.bus.nc.flush();
  const js = jetstream(b.bus.nc);
  const jsm = await jetstreamManager(b.bus.nc);
  const stream = facts.stream(b.prefix);
  const source = `${stream}_SOURCE`;
  const missed = () => cache.counts.flushes.missed_facts;
  try {
    // Heard as stored: three facts, one of them published twice (stored once, heard twice).
    const subject = b.bus.subject("facts.catalog.event-topic.created");
    const topics = [1, 2, 3].map((n) =>
      exampleFact("catalog.event-topic.created", { id: String(n) })
    );
    for (const fact of [...topics, topics[2]]) {
      await js.publish(subject, JSON.stringify(fact), { msgID: fact.id });
    }
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(missed(), 0, "every fact stored was heard");
    assert.deepEqual(log.lines.filter((line) => line.message === UNHEARD), []);

    await jsm.streams.add({ name: source, subjects: [`${b.prefix}-source.>`] });
    await js.publish(`${b.prefix}-source.x`, "{}");
    const { config } = await jsm.streams.info(stream);
    // Heard facts keep coming meanwhile, more per round than were missed: compared with the read
    // before, they hid the gap for as long as they came (a verification run).
    let n = 10;
    const steady = setInterval(() => {
      const fact = exampleFact("catalog.event-topic.created", { id: String(n++) });
      js.publish(subject, JSON.stringify(fact), { msgID: fact.id }).catch(() => {});
    }, 20);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.equal(missed(), 0, "steady writes, every one heard: nothing missed");
      await jsm.streams.update(stream, { ...config, sources: [{ name: source }] });
      await eventually(() => missed() === 1, 5_000, "the cache emptied under steady writes");
    } finally {
      clearInterval(steady);
    }
    const said = log.lines.filter((line) => line.message === UNHEARD);
    assert.equal(said.length, 1);
    assert.equal(said[0].unheard, 1);
    // The count begins again: the next rounds find nothing more.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(missed(), 1);

    // A stream made anew (removed, made again by a service) is another stream.
    await jsm.streams.delete(stream);
    await jsm.streams.add({ ...config, sources: undefined });
    await eventually(() => missed() === 2, 5_000, "the cache emptied for a new stream");
    assert.equal(log.lines.at(-1)?.unheard, "the stream was made anew");
  } finally {
    await jsm.streams.delete(stream).catch(() => {});
    await jsm.streams.delete(source).catch(() => {});
  }
});

Deno.test("[gateway] a fact stream made after the gateway started is no stream made anew", async () => {
  await using b = await factBus();
  const log = recordingLogger();
  const cache = new ResponseCache({ maxBytes: 1 << 20 });
  invalidateOnFacts(b.bus, cache, log, { unheardCheckMs: 100 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await ensureFactStream(b.bus);
  const fact = exampleFact("catalog.event-topic.created", { id: "1" });
  await jetstream(b.bus.nc).publish(
    b.bus.subject("facts.catalog.event-topic.created"),
    JSON.stringify(fact),
    { msgID: fact.id },
  );
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal(cache.counts.flushes.missed_facts, 0);
  assert.deepEqual(log.lines.filter((line) => line.message === UNHEARD), []);
});

// A gateway whose node is cut off from the rest of the cluster cannot hear what the far side
// stores, nor read the stream to find out: here the two other nodes are killed. Until 2026-12-06
// it served its pages for as long as that lasted; then, for a while, it took the answers its own
// node gives a few seconds into the cut (no leader, a sequence that no longer moves) or a cut-off
// leader gives (its replicas silent) for reads, and served again (a verification run).
Deno.test({
  name: "[gateway] a gateway that cannot read the fact stream serves nothing cached until it can",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using cluster = await startNatsCluster(3);
  const [own, ...others] = cluster.nodes;
  const log = recordingLogger();
  const prefix = `unread${crypto.randomUUID().slice(0, 6)}`;
  const bus = await Bus.connect({ url: own.url, prefix, logger: log, factsReplicas: 3 });
  // What is stored just after the cache was emptied lives settleMs only (1 s by default): short.
  const cache = new ResponseCache({ maxBytes: 1 << 20, settleMs: 100 });
  const stream = facts.stream(prefix);
  const said = (message: string) => log.lines.filter((line) => line.message === message);
  try {
    await waitForJetStream(bus);
    await ensureFactStream(bus);
    invalidateOnFacts(bus, cache, log, { unheardCheckMs: 200 });
    for (const leader of [others[0], own]) {
      await t.step(
        `the stream led by ${leader === own ? "its own node" : "a node cut off"}`,
        async () => {
          await leadStreamOn(cluster, bus, stream, leader.name);
          await eventually(() => !cache.suspended, 30_000, "the cache serving");
          // Past the settling of the last emptying (settleMs): what is stored lives on.
          await new Promise((resolve) => setTimeout(resolve, 300));
          const suspensions = cache.counts.flushes.unverified;
          const saidBefore = said(SUSPENDED).length;
          assert.ok(cache.store("/v1/events/1", page(), cache.begin()));
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          assert.ok(cache.lookup("/v1/events/1"), "served while the stream can be read");

          for (const node of others) await cluster.kill(node.name);
          await eventually(() => cache.suspended, 15_000, "the cache suspended");
          assert.equal(bus.reconnecting, false, "its own connection stayed up");
          // As long as the cut lasts: the node's own answers say nothing of the far side.
          for (let waited = 0; waited < 8_000; waited += 200) {
            assert.ok(cache.suspended, `suspended ${waited} ms after it began`);
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
          assert.equal(cache.lookup("/v1/events/1"), undefined);
          assert.equal(cache.store("/v1/events/1", page(), cache.begin()), false, "nothing stored");
          assert.equal(cache.counts.flushes.unverified, suspensions + 1, "one suspension");
          assert.equal(said(SUSPENDED).length, saidBefore + 1, "said once for the cut");

          for (const node of others) await cluster.revive(node.name);
          await eventually(() => !cache.suspended, 30_000, "the cache serving again");
          assert.ok(cache.store("/v1/events/1", page(), cache.begin()));
          assert.ok(cache.lookup("/v1/events/1"));
          // Moving the leader or a node coming back may suspend it for a moment too (no leader
          // for two reads: a clean-clone CI run, 2026-12-06); each suspension said ends in a
          // resumption said.
          assert.equal(said(RESUMED).length, said(SUSPENDED).length, "every suspension ended");
        },
      );
    }
  } finally {
    await bus.nc.close();
  }
});

/** A cached page of event 1. */
function page() {
  return {
    status: 200,
    contentType: "application/vnd.api+json",
    body: new TextEncoder().encode("{}"),
    etag: '"e"',
    tags: ["event:1"],
  };
}

// The gateway's JetStream connection may sit on another node than its fact subscription (each
// connection picks one). A review (2026-12-06): while the stream was read on the JetStream
// connection alone, with the subscription's node cut off and that connection on the far side,
// every read succeeded, the cache was never suspended, and pages were served 2-4 s stale again and
// again; the read that counts is now the main connection's. The cut here takes the routes away
// from one node (a configuration reload), every node still running.
Deno.test({
  name: "[gateway] a gateway whose fact subscription's node is cut off suspends its cache, " +
    "wherever its JetStream connection is",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using cluster = await startRoutedNodes(["a", "b", "c"]);
  const [a, b] = cluster.nodes;
  const log = recordingLogger();
  const prefix = `split${crypto.randomUUID().slice(0, 6)}`;
  // Requests and the fact subscription on a, JetStream traffic on b.
  const main = await connectNats({ servers: [a.url], pingInterval: 1_000, maxPingOut: 2 });
  const gateway = new Bus(main, { url: b.url, prefix, logger: log, factsReplicas: 3 }, [b.url]);
  const cache = new ResponseCache({ maxBytes: 1 << 20, settleMs: 100 });
  try {
    await waitForJetStream(gateway);
    await ensureFactStream(gateway);
    invalidateOnFacts(gateway, cache, log, { unheardCheckMs: 200 });
    assert.notEqual(
      gateway.nc.info?.server_name,
      (await gateway.jetStreamConnection()).info?.server_name,
    );
    // Two nodes that reach each other: the reads count.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(cache.suspended, false, JSON.stringify(log.lines));

    await cluster.cutOff(a.name);
    await eventually(() => cache.suspended, 15_000, "the cache suspended");
    assert.equal(gateway.reconnecting, false, "its own connection stayed up");
    for (let waited = 0; waited < 5_000; waited += 200) {
      assert.ok(cache.suspended, `suspended ${waited} ms after it began`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await cluster.reconnect();
    // A stream whose leader was cut off may stay leaderless, or its leader out of touch with a
    // quorum of copies, for a while after the heal: a few seconds here, over a minute once in a
    // loaded clean-clone CI (2026-12-06, nats-server 2.9.10). That is JetStream's to end; the
    // gateway's part is to serve once a read through its node speaks for the stream again. (In a
    // later CI run, waiting for a leader only, the cache then stayed suspended for 10 s more:
    // perhaps its copies not yet in touch with it, which the gateway asks too; not verified.)
    // (Right after the heal the node may answer that JetStream is unavailable: no check of it.)
    const jsm = await jetstreamManager(gateway.nc, { checkAPI: false });
    const stream = facts.stream(prefix);
    await eventually(
      () => jsm.streams.info(stream).then((info) => speaksForStream(info.cluster), () => false),
      120_000,
      "a read through the healed node to speak for the stream",
    );
    await eventually(() => !cache.suspended, 10_000, "the cache serving again once it can read");
  } finally {
    await gateway.close();
  }
});
