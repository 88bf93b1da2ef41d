import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { eventually } from "@testing/eventually.ts";
import { jetstream, jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import { makeFact, publishFacts } from "../services/audit/_test_utils.ts";
import { z } from "zod";
import { Bus } from "@shared/bus.ts";
import { defineEndpoint } from "@shared/bus_endpoints.ts";
import { GatewayTimeoutError, ServiceUnavailableError } from "@shared/errors.ts";
import { consumeFacts } from "@shared/consumer.ts";
import { installOutbox, recordFact } from "@shared/facts.ts";
import { ensureFactStream, openFactStream } from "@shared/fact_streams.ts";
import { FactRelay, publishFailureCause } from "@shared/fact_relay.ts";
import { ensureParkedStream } from "@shared/fact_parking.ts";
import { openDatabase } from "@shared/db.ts";
import { facts } from "@shared/subjects.ts";
import { recordingLogger, testBus, testDatabase } from "@shared/testing.ts";
import { startNatsCluster, waitForJetStream } from "./nats_cluster.ts";
import { startNatsServer } from "./nats_server.ts";
import { laggingProxy } from "./lagging_proxy.ts";

/** A logger that keeps its lines, and what they said. */
function recording() {
  const logger = recordingLogger();
  return Object.assign(logger, { messages: () => logger.lines.map((line) => line.message) });
}

const unsanitized = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "[bus] Bus.connect uses every server of NATS_URL and logs losing and regaining NATS once",
  ...unsanitized,
}, async (t) => {
  await using cluster = await startNatsCluster(3);
  const dead = `nats://127.0.0.1:${freePort()}`;
  const [first, second, third] = cluster.nodes;

  await t.step("a list whose last server is down still connects (the first answers)", async () => {
    const bus = await Bus.connect({ url: `${first.url},${dead}`, prefix: "t" });
    assert.equal(bus.nc.getServer(), `127.0.0.1:${first.port}`);
    await bus.close();
  });

  await t.step("losing the node in use: reconnects to another listed node", async () => {
    const log = recording();
    // Spaces as operators write them; nats.js picks a server of the list at random.
    const bus = await Bus.connect({
      url: `${first.url}, ${second.url}, ${third.url}`,
      prefix: "t",
      logger: log,
    });
    const inUse = cluster.nodes.find((node) => bus.nc.getServer() === `127.0.0.1:${node.port}`)!;
    const lostAt = Date.now();
    await cluster.kill(inUse.name);
    await eventually(() => log.messages().includes("NATS is back"), 5_000, "the reconnect");
    const tookMs = Date.now() - lostAt;
    assert.notEqual(bus.nc.getServer(), `127.0.0.1:${inUse.port}`);
    assert.deepEqual(log.messages(), ["lost NATS; reconnecting", "NATS is back"]);
    assert.ok(tookMs < 2_000, `reconnected in ${tookMs} ms`);
    // Requests work again on the new server.
    await bus.nc.flush();
    await bus.close();
  });

  await t.step("a hung node in use (SIGSTOP): leaves it for another within seconds", async () => {
    const log = recording();
    const alive = cluster.nodes.filter((node) => node.process);
    const bus = await Bus.connect({
      url: alive.map((node) => node.url).join(","),
      prefix: "t",
      logger: log,
    });
    const inUse = alive.find((node) => bus.nc.getServer() === `127.0.0.1:${node.port}`)!;
    const hungAt = Date.now();
    cluster.freeze(inUse.name, true);
    try {
      // Its connection stays open and says nothing: only the unanswered pings tell.
      await eventually(() => log.messages().includes("NATS is back"), 15_000, "leaving the node");
      const tookMs = Date.now() - hungAt;
      assert.notEqual(bus.nc.getServer(), `127.0.0.1:${inUse.port}`);
      // Three unanswered pings a second apart, perhaps 2 s on the hung node again, then another:
      // ~5 s when the machine is quiet (measured alone: 5 s). Timers run late while the rest of
      // the suite loads both cores (one clean-clone run took over 10 s), so the bound here is what
      // tells "leaves it" from the defect this guards against: staying on it for minutes.
      assert.ok(tookMs < 14_000, `moved in ${tookMs} ms`);
      await bus.nc.flush();
    } finally {
      cluster.freeze(inUse.name, false);
      await bus.close();
    }
  });
});

Deno.test({
  name: "[bus] with NATS gone, a request is a 503 after a second's grace, not a 504 at its timeout",
  ...unsanitized,
}, async () => {
  await using cluster = await startNatsCluster(1);
  const [node] = cluster.nodes;
  const log = recording();
  const bus = await Bus.connect({ url: node.url, prefix: "t", logger: log });
  const echo = defineEndpoint("demo.echo", { request: z.object({}), response: z.null() });
  try {
    await cluster.kill(node.name);
    await eventually(() => log.messages().includes("lost NATS; reconnecting"), 5_000, "the loss");
    const started = performance.now();
    await assert.rejects(bus.request(echo, {}, { timeoutMs: 5_000 }), (error) => {
      assert.ok(error instanceof ServiceUnavailableError, String(error));
      assert.match(error.message, /the bus is unavailable/);
      return true;
    });
    const tookMs = performance.now() - started;
    // It waited for the connection to come back (a lost node is replaced that fast), no longer.
    assert.ok(tookMs >= 900 && tookMs < 2_000, `answered after ${Math.round(tookMs)} ms`);
  } finally {
    await bus.nc.close();
  }
});

// A request already sent when NATS is lost: its answer, if the service sends one, goes to a
// server the requester is no longer connected to. It waited out its whole timeout (5 s by
// default) for that answer; a write in flight at the loss answered 504 only then (seen at the
// request timeout of a fault run, applied all the same).
Deno.test({
  name: "[bus] a request in flight when NATS is lost fails after a second's grace, not its timeout",
  ...unsanitized,
}, async () => {
  await using nats = await startNatsServer();
  const log = recording();
  const bus = await Bus.connect({ url: nats.url, prefix: "t", logger: log });
  const responder = await Bus.connect({ url: nats.url, prefix: "t", logger: recording() });
  const echo = defineEndpoint("demo.echo", { request: z.object({}), response: z.null() });
  const received = Promise.withResolvers<void>();
  // Takes the request and never answers: the answer is lost with the server.
  responder.nc.subscribe(responder.subject(echo.subject), { callback: () => received.resolve() });
  // The subscription is on the server before the request leaves: sent first, the request met no
  // responder (a 503 at once) and the wait below never ended (seen under a loaded CI).
  await responder.nc.flush();
  const unheard = setTimeout(() => received.reject(new Error("the request never arrived")), 5_000);
  try {
    const started = performance.now();
    const pending = bus.request(echo, {}, { timeoutMs: 5_000 });
    pending.catch(() => {});
    await received.promise;
    clearTimeout(unheard);
    await nats.stop();
    await assert.rejects(pending, (error) => {
      assert.ok(error instanceof GatewayTimeoutError, String(error));
      assert.match(error.message, /lost .*may have been made/);
      return true;
    });
    const tookMs = performance.now() - started;
    assert.ok(tookMs >= 900 && tookMs < 2_500, `answered after ${Math.round(tookMs)} ms`);
  } finally {
    clearTimeout(unheard);
    await bus.nc.close();
    await responder.nc.close();
  }
});

Deno.test({
  name: "[facts] stopping a relay waits for a hung JetStream 2 s at most; the facts stay recorded",
  ...unsanitized,
}, async () => {
  await using db = await testDatabase();
  // One plain server (a one-node cluster elects no JetStream leader).
  await using nats = await startNatsServer({ jetStream: true });
  const busLog = recording();
  const relayLog = recording();
  const bus = await Bus.connect({ url: nats.url, prefix: "t", logger: busLog });
  const sql = await openDatabase(db.url, { schema: "demo" });
  const relay = new FactRelay(sql, bus, relayLog);
  try {
    await installOutbox(sql);
    await ensureFactStream(bus);
    await sql.begin((tx) =>
      recordFact(tx, {
        type: "catalog.event-topic.created",
        actor: null,
        data: {
          id: "1",
          name: "T",
          slug: "t",
          "system-image-url": null,
          "created-at": new Date(),
          "deleted-at": null,
        },
      })
    );
    // A hung server: each publish waits out its timeout (5 s), and stopping waited for two.
    nats.freeze(true);
    relay.kick();
    const started = performance.now();
    await relay.stop();
    const tookMs = performance.now() - started;
    const [{ n }] = await sql`select count(*)::int as n from outbox`;
    // Once in a CI run (2026-12-03, a loaded machine) it stopped after 15 ms; what the relay and
    // the bus said then is what tells why.
    assert.ok(
      tookMs >= 1_900 && tookMs < 2_600,
      `stopped after ${Math.round(tookMs)} ms, ${n} fact(s) left in the outbox; relay said ${
        JSON.stringify(relayLog.messages())
      }, bus said ${JSON.stringify(busLog.messages())}`,
    );
    assert.equal(n, 1, "the fact waits in the outbox for the next start");
  } finally {
    nats.freeze(false);
    await relay.flush().catch(() => {});
    await sql.end();
    await bus.nc.close();
  }
});

Deno.test({
  name: "[facts] ensureFactStream applies FACTS_REPLICAS and reconciles an existing stream",
  ...unsanitized,
}, async () => {
  await using cluster = await startNatsCluster(3);
  const connect = (replicas: number) =>
    Bus.connect({ url: cluster.natsUrl, prefix: "rec", factsReplicas: replicas });
  const one = await connect(1);
  await waitForJetStream(one);
  // The answer that made it: asked again at once, a member still making a stream, or a meta
  // leader behind on it, may answer "stream not found" first (seen once on a loaded CI).
  const made = await openFactStream(one);
  assert.equal(made.config.num_replicas, 1);
  const stream = made.config.name;
  const three = await connect(3);
  // A consumer start reconciles both streams it uses.
  const consumer = await consumeFacts(three, {
    durable: "reconcile",
    subject: "facts.>",
    log: recording(),
    handle: async () => {},
  });
  await consumer.stop();
  const jsm = await jetstreamManager(one.nc);
  /** The stream's info once it answers with a leader (it may say "not found" until then). */
  const settled = async (name: string) => {
    let info: StreamInfo | null = null;
    await eventually(
      async () => {
        info = await jsm.streams.info(name).catch(() => null);
        return info?.cluster?.leader !== undefined;
      },
      10_000,
      `${name} to answer with a leader`,
    );
    return info!;
  };
  const facts3 = await settled(stream);
  assert.equal(facts3.config.num_replicas, 3);
  assert.equal(facts3.config.subjects[0], "rec.facts.>", "other settings kept");
  const parked = await settled(facts.parkedStream("rec"));
  assert.equal(parked.config.num_replicas, 3);
  await one.close();
  await three.close();
});

Deno.test("[facts] the relay's failure names the real cause, not 'jetstream is not enabled'", async (t) => {
  await using tb = await testBus();
  const js = jetstream(tb.bus.nc);
  const failure = await js.publish(tb.bus.subject("facts.catalog.event.created"), "{}", {
    timeout: 1000,
  }).then(() => undefined, (error) => error);
  assert.ok(failure, "publishing without a stream fails");
  await t.step("no stream: says so", async () => {
    const cause = await publishFailureCause(tb.bus, failure);
    assert.equal(cause, `stream ${facts.stream(tb.prefix)} does not exist`);
  });
  await t.step("JetStream unreachable: says no leader or not enabled", async () => {
    // A NATS without JetStream answers nobody on the JetStream API.
    await using plain = await startNatsServer();
    const bus = await Bus.connect({ url: plain.url, prefix: "x" });
    const error = await jetstream(bus.nc).publish("x.facts.a.b.c", "{}").catch((e) => e);
    const cause = await publishFailureCause(bus, error);
    assert.match(cause, /^JetStream does not answer: no JetStream leader/);
    await bus.close();
  });
});

Deno.test({
  name: "[consumer] consumeFacts resumes within 2 s once its consumer has a leader again",
  ...unsanitized,
}, async () => {
  await using cluster = await startNatsCluster(3);
  const log = recording();
  const bus = await Bus.connect({ url: cluster.natsUrl, prefix: "cr", factsReplicas: 3 });
  await waitForJetStream(bus);
  // Facts made and published by audit's test helpers, whatever the envelope: told apart by id.
  const received = new Map<string, number>();
  const consumer = await consumeFacts(bus, {
    durable: "resume",
    subject: "facts.>",
    log,
    handle: (batch) => {
      batch.forEach((fact) => received.set(fact.id, Date.now()));
      return Promise.resolve();
    },
  });
  const jsm = await jetstreamManager(bus.nc);
  const stream = facts.stream("cr");
  const sent: string[] = [];
  /** Publishes one new fact, retrying while the stream has no leader; returns when stored. */
  const publishOne = async () => {
    const fact = makeFact();
    const giveUpAt = Date.now() + 30_000;
    for (;;) {
      const ok = await publishFacts(bus, [fact]).then(() => true, () => false);
      if (ok) break;
      if (Date.now() > giveUpAt) throw new Error("The stream took no fact for 30 s");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    sent.push(fact.id);
    return { id: fact.id, storedAt: Date.now() };
  };
  const first = await publishOne();
  await eventually(() => received.has(first.id), 5_000, "the first fact");
  const leader = (await jsm.consumers.info(stream, "resume")).cluster?.leader;
  assert.ok(leader);
  const killedAt = Date.now();
  await cluster.kill(leader);
  let ledAt = 0;
  const electionBound = killedAt + 30_000;
  while (!ledAt) {
    assert.ok(Date.now() < electionBound, "the consumer got no new leader within 30 s");
    const info = await jsm.consumers.info(stream, "resume").catch(() => undefined);
    if (info?.cluster?.leader && info.cluster.leader !== leader) ledAt = Date.now();
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // One fact once the stream takes writes again (its leader may have been on that node too).
  const last = await publishOne();
  await eventually(() => received.has(last.id), 10_000, "the fact after the new leader");
  const resumedAfterMs = received.get(last.id)! - Math.max(ledAt, last.storedAt);
  console.log(
    "[consumer resume]",
    JSON.stringify({ leaderAfterMs: ledAt - killedAt, resumedAfterMs }),
  );
  assert.ok(resumedAfterMs <= 2_000, `resumed ${resumedAfterMs} ms after the new leader`);
  for (const id of sent) assert.ok(received.has(id), `fact ${id} handled`);
  const told = log.messages().filter((m) => m.startsWith("fact consumer"));
  assert.deepEqual(told, ["fact consumer stalled; pulling again", "fact consumer resumed"]);
  await consumer.stop();
  await bus.close();
});

/** A durable consumer of every fact on `bus`, started now, and the fact ids it handled. */
async function startCollecting(bus: Bus, durable: string) {
  const received = new Set<string>();
  const consumer = await consumeFacts(bus, {
    durable,
    subject: "facts.>",
    log: recording(),
    handle: (batch) => {
      batch.forEach((fact) => received.add(fact.id));
      return Promise.resolve();
    },
  });
  return { consumer, received };
}

/** Publishes a fact once the stream takes writes again, and waits until `received` has it. */
async function factReaches(bus: Bus, received: Set<string>): Promise<void> {
  const fact = makeFact();
  await eventually(
    () => publishFacts(bus, [fact]).then(() => true, () => false),
    15_000,
    "the stream to take a fact",
    200,
  );
  await eventually(() => received.has(fact.id), 10_000, "the fact");
}

// A service starting while its cluster elects a meta leader (two of three nodes lost, one back
// within seconds: a node restarted while another was down): its streams answer (their surviving
// member has them), but its account check and a consumer's creation need the meta leader. Either
// timed out once and failed the start. The same lag right after a stream is made answers the
// creation "stream not found": seen twice in 40 tries of a stream made through one node and a
// consumer added at once through another, then not in 160 more, nor in 280 consumer starts (whose
// stream checks come first), so it is not what this test provokes.
Deno.test({
  name: "[consumer] a consumer start waits out a cluster electing its meta leader; a refusal not",
  ...unsanitized,
}, async (t) => {
  await using cluster = await startNatsCluster(3);
  const [first, second, third] = cluster.nodes;
  const bus = await Bus.connect({ url: first.url, prefix: "settle", factsReplicas: 3 });
  await waitForJetStream(bus);
  await openFactStream(bus);
  await ensureParkedStream(bus);
  /** Loses two nodes: no quorum, no meta leader. */
  const loseQuorum = () => Promise.all([cluster.kill(second.name), cluster.kill(third.name)]);
  // Longer than a JetStream request's timeout (5 s), so a creation unanswered meanwhile times out
  // whichever node leads: a meta leader that keeps its leadership through a shorter loss makes a
  // creation it was asked for once its quorum is back, and answers it in time.
  const LOSS_MS = 5_500;
  /** Brings one back after LOSS_MS: a quorum again. */
  const reviveLater = () =>
    new Promise((resolve) => setTimeout(resolve, LOSS_MS)).then(() => cluster.revive(second.name));

  await t.step("lost before the start", async () => {
    await loseQuorum();
    const lostAt = Date.now();
    const revived = reviveLater();
    const { consumer, received } = await startCollecting(bus, "before");
    try {
      const startedAfterMs = Date.now() - lostAt;
      console.log("[consumer settle]", JSON.stringify({ startedAfterMs }));
      await revived;
      assert.ok(startedAfterMs >= LOSS_MS, `started ${startedAfterMs} ms after the loss`);
      await factReaches(bus, received);
    } finally {
      await consumer.stop();
    }
  });

  await cluster.revive(third.name);
  await waitForJetStream(bus);

  await t.step("lost between the streams' check and the consumer's creation", async () => {
    // The streams answered; the creation is held on its way while the quorum goes, so the
    // surviving node gets it with no meta leader.
    await using proxy = laggingProxy(first.port, 0);
    let revived: Promise<unknown> | undefined;
    proxy.sendLag = (chunk) => {
      const text = new TextDecoder().decode(chunk);
      if (revived || !/\$JS\.API\.CONSUMER\.(DURABLE\.)?CREATE\./.test(text)) return 0;
      revived = loseQuorum().then(reviveLater);
      return 1_000;
    };
    const held = await Bus.connect({
      url: `nats://127.0.0.1:${proxy.port}`,
      prefix: "settle",
      factsReplicas: 3,
    });
    try {
      const startAt = Date.now();
      const { consumer, received } = await startCollecting(held, "between");
      console.log("[consumer settle]", JSON.stringify({ startedInMs: Date.now() - startAt }));
      try {
        assert.ok(revived, "the creation passed the proxy");
        await revived;
        await factReaches(bus, received);
      } finally {
        await consumer.stop();
      }
    } finally {
      await revived;
      await held.close();
    }
  });

  await t.step("a refusal is not waited out", async () => {
    // A subject the stream does not hold fails the start at once.
    const refusedAt = Date.now();
    await assert.rejects(
      consumeFacts(bus, { subject: "elsewhere.>", log: recording(), handle: async () => {} }),
    );
    const refusedAfterMs = Date.now() - refusedAt;
    assert.ok(refusedAfterMs < 2_000, `refused after ${refusedAfterMs} ms`);
  });
  await bus.close();
});
