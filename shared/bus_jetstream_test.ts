/**
 * A process's JetStream connection sits on the node its main connection is on (a review,
 * 2026-12-06: each picked a node at random, and 11 of 12 buses had them on two nodes, where the
 * gateway's read of the fact stream on one says nothing of what the other hears). Real three-node
 * NATS cluster.
 */
import assert from "node:assert/strict";
import { Bus } from "./bus.ts";
import { JetStreamConnection } from "./bus_jetstream.ts";
import { connectNats } from "./nats_transport.ts";
import { recordingLogger } from "./testing.ts";
import { startNatsCluster } from "@testing/nats_cluster.ts";

Deno.test("[bus] a process's two connections share a node, and processes spread over the nodes", async () => {
  await using cluster = await startNatsCluster(3);
  const buses = await Promise.all(
    Array.from(
      { length: 12 },
      () => Bus.connect({ url: cluster.natsUrl, prefix: "nodes", logger: recordingLogger() }),
    ),
  );
  try {
    const nodes = await Promise.all(buses.map(async (bus) => ({
      main: bus.nc.info?.server_name,
      jetStream: (await bus.jetStreamConnection()).info?.server_name,
    })));
    for (const { main, jetStream } of nodes) assert.equal(jetStream, main, JSON.stringify(nodes));
    const used = new Set(nodes.map(({ main }) => main));
    assert.ok(used.size >= 2, `12 processes all on ${[...used]}`);
  } finally {
    await Promise.all(buses.map((bus) => bus.close()));
  }
});

Deno.test("[bus] a JetStream connection found on another node is made again on the main one's", async () => {
  await using cluster = await startNatsCluster(3);
  const [here, other] = cluster.nodes;
  const main = await connectNats({ servers: [here.url] });
  const log = recordingLogger();
  let connects = 0;
  const jetStream = new JetStreamConnection(main, {
    // The first lands elsewhere, as two reconnects that went different ways would.
    connect: (servers, name) =>
      connectNats({ servers: connects++ === 0 ? [other.url] : servers, name, noRandomize: true }),
    servers: cluster.nodes.map((node) => node.url),
    name: "test",
    log,
  });
  try {
    assert.equal(await jetStream.onMainNode(), undefined, "not on the main connection's node");
    assert.ok(log.lines.some((l) => l.message.startsWith("JetStream connection on another node")));
    const rejoined = await jetStream.onMainNode();
    assert.ok(rejoined, "made again");
    assert.equal(rejoined.info?.server_name, here.name);
    assert.equal(connects, 2);
    assert.equal(await jetStream.onMainNode(), rejoined, "kept while it is there");
  } finally {
    await jetStream.close();
    await main.close();
  }
});
