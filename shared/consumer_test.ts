import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { consumeFacts } from "./consumer.ts";
import { deleteFactStream, ensureFactStream, type Fact } from "./facts.ts";
import { createLogger } from "./log.ts";
import { facts } from "./subjects.ts";
import { testBus } from "./testing.ts";
import { exampleFact } from "@testing/facts.ts";

const quiet = createLogger("test", "error");
const CREATED = "facts.catalog.event-topic.created";

/** Topic `n` created: a valid fact of a registered type. */
function fact(n: number): Fact<"catalog.event-topic.created"> {
  return exampleFact("catalog.event-topic.created", { id: String(n) });
}

Deno.test("[consumer] facts arrive in batches, each once, and survive a restart", async () => {
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const js = jetstream(b.bus.nc);
  try {
    const seen: string[] = [];
    const batches: number[] = [];
    const handle = (batch: Fact[]) => {
      batches.push(batch.length);
      seen.push(...batch.map((f) => f.data.id));
      return Promise.resolve();
    };
    for (let n = 0; n < 300; n++) {
      await js.publish(b.bus.subject(CREATED), JSON.stringify(fact(n)));
    }
    const first = await consumeFacts(b.bus, {
      durable: "demo",
      subject: "facts.catalog.>",
      handle,
      log: quiet,
      batchSize: 100,
    });
    await eventually(() => seen.length === 300);
    await first.stop();
    assert.ok(batches.every((size) => size <= 100));
    assert.ok(batches.length < 300, "facts were handled in batches");
    // Published while nobody consumed: the durable consumer picks them up after a restart.
    for (let n = 300; n < 350; n++) {
      await js.publish(b.bus.subject(CREATED), JSON.stringify(fact(n)));
    }
    const second = await consumeFacts(b.bus, {
      durable: "demo",
      subject: "facts.catalog.>",
      handle,
      log: quiet,
    });
    await eventually(() => seen.length === 350);
    await second.stop();
    assert.equal(new Set(seen).size, 350, "no fact twice");
  } finally {
    await deleteFactStream(b.bus);
  }
});

Deno.test("[consumer] a failing batch is redelivered, a malformed message is parked", async () => {
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const js = jetstream(b.bus.nc);
  try {
    let failures = 1;
    const handled: string[] = [];
    const consumer = await consumeFacts(b.bus, {
      durable: "demo",
      subject: "facts.catalog.>",
      log: quiet,
      handle: (batch) => {
        if (failures-- > 0) return Promise.reject(new Error("database down"));
        handled.push(...batch.map((f) => f.data.id));
        return Promise.resolve();
      },
    });
    await js.publish(b.bus.subject(CREATED), "not json");
    await js.publish(b.bus.subject(CREATED), JSON.stringify({ id: "x" }));
    await js.publish(b.bus.subject(CREATED), JSON.stringify(fact(1)));
    await eventually(() => handled.length === 1, 8000);
    await consumer.stop();
    assert.deepEqual(handled, ["1"]);
    const jsm = await jetstreamManager(b.bus.nc);
    const parked = await jsm.streams.info(facts.parkedStream(b.prefix));
    assert.equal(parked.state.messages, 2);
  } finally {
    await deleteFactStream(b.bus);
  }
});

Deno.test("[consumer] misrouted facts and facts the handler rejects are parked, the rest acked", async () => {
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const js = jetstream(b.bus.nc);
  try {
    const handled: string[] = [];
    const bad = fact(2);
    const consumer = await consumeFacts(b.bus, {
      durable: "demo",
      subject: "facts.catalog.>",
      log: quiet,
      handle: (batch) => {
        handled.push(...batch.map((f) => f.data.id));
        return Promise.resolve({ reject: [{ id: bad.id, reason: "test" }] });
      },
    });
    // Its own type says event-topic.created: on event-topic.deleted it was misrouted.
    await js.publish(b.bus.subject("facts.catalog.event-topic.deleted"), JSON.stringify(fact(1)));
    await js.publish(b.bus.subject(CREATED), JSON.stringify(bad));
    await js.publish(b.bus.subject(CREATED), JSON.stringify(fact(3)));
    const jsm = await jetstreamManager(b.bus.nc);
    await eventually(() => handled.length === 2);
    const stream = facts.stream(b.prefix);
    let info = await jsm.consumers.info(stream, "demo");
    for (let i = 0; i < 100 && (info.num_ack_pending > 0 || info.num_pending > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      info = await jsm.consumers.info(stream, "demo");
    }
    await consumer.stop();
    assert.deepEqual(handled, ["2", "3"]);
    assert.equal(info.num_ack_pending, 0, "nothing left to redeliver");
    const parked = await jsm.streams.info(facts.parkedStream(b.prefix));
    assert.equal(parked.state.messages, 2);
  } finally {
    await deleteFactStream(b.bus);
  }
});

Deno.test("[consumer] facts of unknown types or breaking their schema are parked", async () => {
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const js = jetstream(b.bus.nc);
  try {
    const handled: string[] = [];
    const consumer = await consumeFacts(b.bus, {
      durable: "demo",
      subject: "facts.catalog.>",
      log: quiet,
      handle: (batch) => {
        handled.push(...batch.map((f) => f.data.id));
        return Promise.resolve();
      },
    });
    const { data, ...envelope } = fact(1);
    const { name: _, ...nameless } = data;
    await js.publish(b.bus.subject(CREATED), JSON.stringify({ ...envelope, data: nameless }));
    const renamed = { ...fact(2), type: "catalog.event-topic.renamed" };
    await js.publish(b.bus.subject("facts.catalog.event-topic.renamed"), JSON.stringify(renamed));
    await js.publish(b.bus.subject(CREATED), JSON.stringify(fact(3)));
    await eventually(() => handled.length === 1);
    const jsm = await jetstreamManager(b.bus.nc);
    const parked = facts.parkedStream(b.prefix);
    for (let i = 0; i < 100 && (await jsm.streams.info(parked)).state.messages < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await consumer.stop();
    assert.deepEqual(handled, ["3"]);
    assert.equal((await jsm.streams.info(parked)).state.messages, 2);
  } finally {
    await deleteFactStream(b.bus);
  }
});

Deno.test("[consumer] start picks the beginning, a time, or new facts only", async (t) => {
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const js = jetstream(b.bus.nc);
  try {
    for (const n of [1, 2]) await js.publish(b.bus.subject(CREATED), JSON.stringify(fact(n)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const since = new Date();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await js.publish(b.bus.subject(CREATED), JSON.stringify(fact(3)));
    const read = async (start: "all" | "new" | Date, more: number[] = []) => {
      const seen: string[] = [];
      // No durable name: an ephemeral consumer, as a replay tool would use.
      const consumer = await consumeFacts(b.bus, {
        subject: CREATED,
        start,
        log: quiet,
        handle: (batch) => {
          seen.push(...batch.map((f) => f.data.id));
          return Promise.resolve();
        },
      });
      for (const n of more) await js.publish(b.bus.subject(CREATED), JSON.stringify(fact(n)));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await consumer.stop();
      return seen;
    };
    await t.step("all: the whole stream", async () => {
      assert.deepEqual(await read("all"), ["1", "2", "3"]);
    });
    await t.step("a time: what was published since", async () => {
      assert.deepEqual(await read(since), ["3"]);
    });
    await t.step("new: only what comes after the consumer starts", async () => {
      assert.deepEqual(await read("new", [4]), ["4"]);
    });
  } finally {
    await deleteFactStream(b.bus);
  }
});
