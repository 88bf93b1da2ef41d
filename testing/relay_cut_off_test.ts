/**
 * A relay whose node is cut off from the rest of the NATS cluster (here: the other two nodes
 * killed, with the fact stream's leader on its node, which then waits for a quorum that never
 * answers) must not hold the outbox's oldest rows for a publish's whole timeout, again and again:
 * the instances on the healthy side wait for those rows (the facts' order), and every subscriber
 * got its facts seconds late for as long as the partition lasted (a partition review, 2026-12-06).
 */
import assert from "node:assert/strict";
import { Bus } from "@shared/bus.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import { ensureFactStream } from "@shared/fact_streams.ts";
import { FactRelay } from "@shared/fact_relay.ts";
import { installOutbox, recordFact } from "@shared/facts.ts";
import { facts } from "@shared/subjects.ts";
import { recordingLogger, testDatabase } from "@shared/testing.ts";
import { eventually } from "./eventually.ts";
import { exampleFact } from "./facts.ts";
import { leadStreamOn, startNatsCluster, waitForJetStream } from "./nats_cluster.ts";

/** How long a healthy instance's drain waits for rows another holds (fact_relay.ts). */
const HEALTHY_LOCK_WAIT_MS = 2_000;

Deno.test({
  name: "[facts] a relay cut off from the cluster leaves the outbox to the others between tries",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using db = await testDatabase();
  await using cluster = await startNatsCluster(3);
  const [own, ...others] = cluster.nodes;
  const prefix = "cut";
  const log = recordingLogger();
  const bus = await Bus.connect({ url: own.url, prefix, logger: log, factsReplicas: 3 });
  const sql = await openDatabase(db.url, { schema: "demo" });
  const relay = new FactRelay(sql, bus, log);
  try {
    await waitForJetStream(bus);
    await ensureFactStream(bus);
    await leadStreamOn(cluster, bus, facts.stream(prefix), own.name);
    await installOutbox(sql);
    await sql.begin((tx) => recordFact(tx, topicCreated()));
    for (const node of others) await cluster.kill(node.name);
    relay.start();
    relay.kick();
    // Its first publish waits out the usual timeout (5 s): nothing tells it yet.
    await eventually(
      () => log.lines.some((line) => line.message.startsWith("cannot publish facts yet")),
      15_000,
      "the relay's first failure",
    );
    // From then on a healthy instance's drain gets the rows within its lock wait, every time.
    const waits = await lockWaits(sql, 7_000);
    const refused = waits.filter((ms) => ms === Infinity).length;
    assert.equal(refused, 0, `a healthy drain was refused the rows ${refused} of ${waits.length}`);
    const [{ n }] = await sql`select count(*)::int as n from outbox`;
    assert.equal(n, 1, "the fact waits in the outbox");
    // Another instance publishes it meanwhile: the outbox this relay then finds empty says
    // nothing of JetStream, and the next fact finds it as careful (a verification run saw it
    // take the rows for 5 s again after each empty drain).
    await sql`delete from outbox`;
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    await sql.begin((tx) => recordFact(tx, topicCreated("2")));
    const after = await lockWaits(sql, 6_000);
    const refusedAfter = after.filter((ms) => ms === Infinity).length;
    assert.equal(
      refusedAfter,
      0,
      `after an empty drain: refused ${refusedAfter} of ${after.length}`,
    );
  } finally {
    await relay.stop(100).catch(() => {});
    await sql.end();
    await bus.nc.close();
  }
});

/**
 * Takes the outbox's rows as a healthy instance's drain does (waiting HEALTHY_LOCK_WAIT_MS at
 * most), again and again for `forMs`: how long each take waited, Infinity for each refused.
 */
async function lockWaits(sql: Sql, forMs: number): Promise<number[]> {
  const waits: number[] = [];
  const until = performance.now() + forMs;
  while (performance.now() < until) {
    const began = performance.now();
    try {
      await sql.begin(async (tx) => {
        await tx`select set_config('lock_timeout', ${`${HEALTHY_LOCK_WAIT_MS}ms`}, true)`;
        await tx`select seq from outbox order by seq limit 1 for update`;
      });
      waits.push(performance.now() - began);
    } catch (error) {
      if ((error as { code?: string }).code !== "55P03") throw error;
      waits.push(Infinity);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return waits;
}

/** A fact to record: a topic created. */
function topicCreated(id = "1") {
  const { type, data } = exampleFact("catalog.event-topic.created", { id });
  return { type, actor: null, data };
}
