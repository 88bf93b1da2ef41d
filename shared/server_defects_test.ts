import assert from "node:assert/strict";
import { Bus } from "./bus.ts";
import { consumeFacts } from "./consumer.ts";
import { ensureFactStream } from "./fact_streams.ts";
import { skipsReplicatedRedeliveries } from "./server_defects.ts";
import { recordingLogger } from "./testing.ts";
import { factBus } from "@testing/fact_bus.ts";
import { startNatsCluster, waitForJetStream } from "@testing/nats_cluster.ts";

const SKIPPED = "nats-server";

Deno.test("[consumer] releases before 2.11 may skip a replicated consumer's redelivery", () => {
  for (const version of ["2.9.10", "2.10.26", "v2.10.29", "2.10.0-beta.1", "1.4.1"]) {
    assert.equal(skipsReplicatedRedeliveries(version), true, version);
  }
  for (const version of ["2.11.0", "2.11.0-RC.1", "2.12.3", "3.0.0", "unknown"]) {
    assert.equal(skipsReplicatedRedeliveries(version), false, version);
  }
});

Deno.test({
  name: "[consumer] a consumer of a replicated stream warns once of a server that skips facts",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await t.step("one replica: nothing to warn of", async () => {
    await using b = await factBus({ ensureStream: true });
    const log = recordingLogger();
    const consumer = await consumeFacts(b.bus, {
      subject: "facts.catalog.>",
      log,
      async handle() {},
    });
    await consumer.stop();
    assert.ok(!log.lines.some((line) => line.message.startsWith(SKIPPED)));
  });

  await t.step("three replicas: warned on a server before 2.11, once", async () => {
    await using cluster = await startNatsCluster(3);
    const log = recordingLogger();
    const bus = await Bus.connect({
      url: cluster.nodes[0].url,
      prefix: "skip",
      logger: log,
      factsReplicas: 3,
    });
    try {
      await waitForJetStream(bus);
      await ensureFactStream(bus);
      for (const durable of ["one", "two"]) {
        const consumer = await consumeFacts(bus, {
          durable,
          subject: "facts.catalog.>",
          log,
          async handle() {},
        });
        await consumer.stop();
      }
      const version = bus.nc.info!.version;
      const warned = log.lines.filter((line) => line.message.startsWith(SKIPPED));
      assert.equal(warned.length, skipsReplicatedRedeliveries(version) ? 1 : 0, version);
      if (warned.length) assert.match(warned[0].message, /2\.11 or later/);
    } finally {
      await bus.nc.close();
    }
  });
});
