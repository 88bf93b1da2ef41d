/**
 * The README's recipe for a parked fact, once its handler is fixed: read the parked copy, publish
 * it again on its original subject with its fact id as `Nats-Msg-Id`, and every consumer of that
 * subject gets it again, as the published contract describes it (blueprint/asyncapi.yaml: the
 * `content-type` and `Nats-Msg-Id` headers are required).
 */
import assert from "node:assert/strict";
import { headers, type MsgHdrs } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { eventually } from "@testing/eventually.ts";
import { factBus } from "@testing/fact_bus.ts";
import { exampleFact, storedMessages } from "@testing/facts.ts";
import { consumeFacts } from "./consumer.ts";
import { CLOUDEVENTS_JSON, type Fact } from "./facts.ts";
import { createLogger } from "./log.ts";
import { facts } from "./subjects.ts";

const quiet = createLogger("test", "error");

/**
 * The README's subject for a parked copy published again: its own without the leading
 * `<prefix>.parked.` (the copy's subject is `<prefix>.parked.<the original's, prefix and all>`).
 */
function originalSubject(prefix: string, parkedSubject: string): string {
  const lead = `${prefix}.parked.`;
  assert.ok(parkedSubject.startsWith(`${lead}${prefix}.facts.`), parkedSubject);
  return parkedSubject.slice(lead.length);
}

/**
 * The README's headers for it: the fact id as the message id (the parked copy lost it) and the
 * CloudEvents media type (the copy keeps it, but a `nats pub` of the body alone sends neither).
 */
function republishHeaders(factId: string): MsgHdrs {
  const h = headers();
  h.set("Nats-Msg-Id", factId);
  h.set("content-type", CLOUDEVENTS_JSON);
  return h;
}

Deno.test("[consumer] a parked fact published again as the README says reaches its consumer, headers and all", async () => {
  await using b = await factBus({ ensureStream: true });
  const js = jetstream(b.bus.nc);
  const jsm = await jetstreamManager(b.bus.nc);
  const subject = b.bus.subject("facts.catalog.event-topic.created");
  const handled: string[] = [];
  let fixed = false;
  const consumer = await consumeFacts(b.bus, {
    durable: "republish",
    subject: "facts.catalog.>",
    log: quiet,
    // A handler that cannot take topic 2 until it is fixed: the fact is parked.
    handle: (batch: Fact[]) => {
      const bad = batch.filter((f) => f.data.id === "2" && !fixed);
      handled.push(...batch.filter((f) => !bad.includes(f)).map((f) => f.data.id));
      return Promise.resolve({ reject: bad.map((f) => ({ id: f.id, reason: "handler bug" })) });
    },
  });
  try {
    const poison = exampleFact("catalog.event-topic.created", { id: "2" });
    for (const fact of [exampleFact("catalog.event-topic.created", { id: "1" }), poison]) {
      // As the relay publishes a fact, but without the message id: the stream would drop a copy
      // published again within its ten-minute de-duplication window (the README says so).
      const h = headers();
      h.set("content-type", CLOUDEVENTS_JSON);
      await js.publish(subject, JSON.stringify(fact), { headers: h });
    }
    const parkedStream = facts.parkedStream(b.prefix);
    await eventually(async () => (await jsm.streams.info(parkedStream)).state.messages === 1);
    const parked = await jsm.streams.getMessage(parkedStream, { seq: 1 });
    assert.ok(parked, "the parked copy");
    assert.equal(parked.header.get("content-type"), CLOUDEVENTS_JSON);
    assert.deepEqual(handled, ["1"]);

    fixed = true;
    const again = originalSubject(b.prefix, parked.subject);
    const ack = await js.publish(again, parked.data, { headers: republishHeaders(poison.id) });
    assert.equal(ack.duplicate, false);
    await eventually(() => handled.includes("2"), 5000, "the fact handled again");
    // Within the de-duplication window a second copy is dropped, as the README warns.
    const twice = await js.publish(again, parked.data, { headers: republishHeaders(poison.id) });
    assert.equal(twice.duplicate, true);
    const [, stored] = await storedMessages(b.bus, facts.stream(b.prefix)).then((all) =>
      all.filter((m) => m.json<Fact>().id === poison.id)
    );
    assert.ok(stored, "published again into the fact stream");
    assert.equal(stored.subject, subject);
    assert.equal(stored.header.get("Nats-Msg-Id"), poison.id);
    assert.equal(stored.header.get("content-type"), CLOUDEVENTS_JSON);
  } finally {
    await consumer.stop();
  }
});

Deno.test("[consumer] a bound subscriber fails at start when the parked stream does not exist", async () => {
  // The fact stream made (a producer's relay), the parked one not: parking would have failed every
  // 5 s for good, the message in question coming back each time.
  await using b = await factBus({ ensureStream: true });
  const jsm = await jetstreamManager(b.bus.nc);
  await assert.rejects(
    consumeFacts(b.bus, {
      subject: "facts.catalog.>",
      bindStreams: true,
      log: quiet,
      handle: () => Promise.resolve(),
    }),
    new RegExp(`^Error: Cannot bind to stream ${facts.parkedStream(b.prefix)}: it does not exist`),
  );
  const names: string[] = [];
  for await (const name of jsm.streams.names()) names.push(name);
  assert.ok(!names.includes(facts.parkedStream(b.prefix)), "the parked stream is not made");
  assert.deepEqual(await consumersOf(jsm, facts.stream(b.prefix)), [], "no consumer is left");
});

/** The names of a stream's consumers. */
async function consumersOf(
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  stream: string,
): Promise<string[]> {
  const names: string[] = [];
  for await (const info of jsm.consumers.list(stream)) {
    if (info) names.push(info.name); // nats-server 2.9 lists one being removed as null
  }
  return names;
}
