/**
 * An instance beyond its capacity (shared/bus_admission.ts), on the real NATS: it runs at most
 * `serveConcurrency` handlers, answers a request whose deadline passed while it waited without
 * running it, and refuses at once what would wait past its bytes.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { DEADLINE_HEADER } from "./deadline.ts";
import { Bus } from "./bus.ts";
import { Admission } from "./bus_admission.ts";
import { defineEndpoint, route } from "./bus_endpoints.ts";
import { GatewayTimeoutError, ServiceUnavailableError } from "./errors.ts";
import { createLogger } from "./log.ts";
import { metrics } from "./metrics.ts";
import { testBus } from "./testing.ts";
import { eventually, within } from "@testing/eventually.ts";

const held = defineEndpoint("demo.held", {
  request: z.object({ id: z.string(), pad: z.string().optional() }),
  response: z.literal("done"),
});

type Limits = { serveConcurrency: number; serveWaitingBytes?: number };

/** A connection of its own on the client's bus prefix, serving with `limits`. */
function servingBus(client: { prefix: string; natsUrl: string }, limits: Limits): Promise<Bus> {
  return Bus.connect({
    url: client.natsUrl,
    prefix: client.prefix,
    logger: createLogger("test", "error"),
    ...limits,
  });
}

/** A served instance whose handler holds every request until `release`, recording what ran. */
async function heldInstance(client: { prefix: string; natsUrl: string }, limits: Limits) {
  const bus = await servingBus(client, limits);
  const started: string[] = [];
  let running = 0;
  let mostAtOnce = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const service = bus.serve({ name: "demo", version: "1.0.0" }, [
    route(held, async ({ id }) => {
      started.push(id);
      mostAtOnce = Math.max(mostAtOnce, ++running);
      await released;
      running--;
      return "done" as const;
    }),
  ]);
  // Served on a connection of its own: its subscription must reach NATS before the requests.
  await bus.nc.flush();
  return {
    started,
    mostAtOnce: () => mostAtOnce,
    release,
    async [Symbol.asyncDispose]() {
      release();
      await service.stop();
      await bus.close();
    },
  };
}

async function waiting(): Promise<number> {
  const family = (await metrics.snapshot()).find((f) => f.name === "oe_bus_requests_waiting");
  return family?.series[0]?.value ?? 0;
}

/** Requests this process refused so far for `reason` (tests share the process: compare counts). */
async function refusedFor(reason: "busy" | "late"): Promise<number> {
  const family = (await metrics.snapshot()).find((f) => f.name === "oe_bus_requests_refused");
  return family?.series.find((s) => s.labels.reason === reason)?.value ?? 0;
}

Deno.test("[bus] an instance runs SERVE_CONCURRENCY requests at once; the others wait their turn", async () => {
  await using client = await testBus();
  await using instance = await heldInstance(client, { serveConcurrency: 2 });
  const answers = ["a", "b", "c", "d", "e"].map((id) =>
    client.bus.request(held, { id }, { timeoutMs: 5_000 })
  );
  await eventually(() => instance.started.length === 2);
  await eventually(async () => await waiting() === 3);
  instance.release();
  assert.deepEqual(await Promise.all(answers), ["done", "done", "done", "done", "done"]);
  assert.deepEqual(instance.started.toSorted(), ["a", "b", "c", "d", "e"]);
  assert.equal(instance.mostAtOnce(), 2);
  assert.equal(await waiting(), 0);
});

Deno.test("[bus] a request whose deadline passed while it waited is answered without running", async () => {
  await using client = await testBus();
  await using instance = await heldInstance(client, { serveConcurrency: 1 });
  const [lateBefore, busyBefore] = [await refusedFor("late"), await refusedFor("busy")];
  const first = client.bus.request(held, { id: "first" }, { timeoutMs: 5_000 });
  await eventually(() => instance.started.length === 1);
  // Its requester gives up after 300 ms while it waits behind the first.
  await assert.rejects(
    client.bus.request(held, { id: "late" }, { timeoutMs: 300 }),
    GatewayTimeoutError,
  );
  instance.release();
  assert.equal(await first, "done");
  // Its turn came after its deadline: nothing ran for it, and nothing waits any more.
  await eventually(async () => await waiting() === 0);
  assert.deepEqual(instance.started, ["first"]);
  // Counted as late, apart from the refusals at arrival.
  assert.equal(await refusedFor("late"), lateBefore + 1);
  assert.equal(await refusedFor("busy"), busyBefore);
});

Deno.test("[bus] past the bytes that may wait, a request is refused at once with a 503", async () => {
  await using client = await testBus();
  await using instance = await heldInstance(client, {
    serveConcurrency: 1,
    serveWaitingBytes: 200,
  });
  const first = client.bus.request(held, { id: "first" }, { timeoutMs: 5_000 });
  await eventually(() => instance.started.length === 1);
  const second = client.bus.request(held, { id: "second", pad: "x".repeat(100) }, {
    timeoutMs: 5_000,
  });
  await eventually(async () => await waiting() === 1);
  const busyBefore = await refusedFor("busy");
  const began = performance.now();
  await assert.rejects(
    client.bus.request(held, { id: "third", pad: "x".repeat(100) }, { timeoutMs: 5_000 }),
    (error) => error instanceof ServiceUnavailableError && /1 requests waiting/.test(error.message),
  );
  assert.ok(performance.now() - began < 2_000, "refused at once, not at its deadline");
  assert.equal(await refusedFor("busy"), busyBefore + 1);
  instance.release();
  assert.deepEqual(await Promise.all([first, second]), ["done", "done"]);
  assert.deepEqual(instance.started, ["first", "second"]);
});

const timed = defineEndpoint("demo.timed", {
  request: z.object({ ms: z.number(), id: z.string().optional() }),
  response: z.literal("done"),
});

/** An instance serving one request at a time, each for the milliseconds it asks; `ran` lists ids. */
async function timedInstance(client: { prefix: string; natsUrl: string }) {
  const bus = await servingBus(client, { serveConcurrency: 1 });
  const ran: string[] = [];
  const service = bus.serve({ name: "demo", version: "1.0.0" }, [
    route(timed, async ({ ms, id }) => {
      if (id) ran.push(id);
      await new Promise((resolve) => setTimeout(resolve, ms));
      return "done" as const;
    }),
  ]);
  await bus.nc.flush();
  return {
    ran,
    async [Symbol.asyncDispose]() {
      await service.stop();
      await bus.close();
    },
  };
}

/** Three turns of 400 ms, so that the instance knows what a turn takes. */
async function learnTurns(client: Bus) {
  for (let i = 0; i < 3; i++) await client.request(timed, { ms: 400 });
}

/** NATS headers carrying a deadline `ms` from now, as the bus sends them. */
function deadlineIn(ms: number) {
  const headers = natsHeaders();
  headers.set(DEADLINE_HEADER, String(Date.now() + ms));
  return headers;
}

const busy = (error: unknown) =>
  error instanceof ServiceUnavailableError && /too busy/.test(error.message);

Deno.test("[bus] a request that would not be served before its deadline is refused at once", async () => {
  await using client = await testBus();
  await using _instance = await timedInstance(client);
  await learnTurns(client.bus);
  // Sent in order on one connection: the instance takes them in that order.
  const first = client.bus.request(timed, { ms: 400 }, { timeoutMs: 5_000 });
  // Behind the running one, a turn of its own: ~800 ms, within 1,100.
  const second = client.bus.request(timed, { ms: 400 }, { timeoutMs: 1_100 });
  // Behind that one too: ~1,200 ms, past its 1,100: refused now, not after waiting, with the
  // time to try again (read off the raw reply, as the gateway reads it).
  const began = performance.now();
  const refused = await client.bus.nc.request(
    client.bus.subject("demo.timed"),
    JSON.stringify({ ms: 400 }),
    { timeout: 1_100, headers: deadlineIn(1_100) },
  );
  assert.ok(performance.now() - began < 300, "refused at once");
  assert.equal(refused.headers?.get("Status"), "503");
  assert.equal(refused.headers?.get("Retry-After"), "1");
  assert.match(new TextDecoder().decode(refused.data), /too busy to answer it in time/);
  assert.deepEqual(await Promise.all([first, second]), ["done", "done"]);
});

Deno.test("[bus] a request is not let wait more than half its time left", async () => {
  await using client = await testBus();
  await using _instance = await timedInstance(client);
  await learnTurns(client.bus);
  const served = [0, 1, 2].map(() => client.bus.request(timed, { ms: 400 }, { timeoutMs: 2_000 }));
  // Two wait behind the running one (400 and 800 ms); a third would wait ~1,200 ms, more than
  // half its 2,000, though it would be answered (~1,600 ms) in time.
  const began = performance.now();
  await assert.rejects(client.bus.request(timed, { ms: 400 }, { timeoutMs: 2_000 }), busy);
  assert.ok(performance.now() - began < 300, "refused at once");
  assert.deepEqual(await Promise.all(served), ["done", "done", "done"]);
});

Deno.test("[bus] a request whose turn comes with less than a turn's time left does not run", async () => {
  await using client = await testBus();
  await using instance = await timedInstance(client);
  await learnTurns(client.bus);
  // The running one takes 900 ms where turns took 400: the next one's turn comes ~200 ms before
  // its deadline, less than a turn.
  const first = client.bus.request(timed, { ms: 900, id: "first" }, { timeoutMs: 5_000 });
  await assert.rejects(
    client.bus.request(timed, { ms: 400, id: "second" }, { timeoutMs: 1_100 }),
    GatewayTimeoutError,
  );
  assert.equal(await first, "done");
  assert.deepEqual(instance.ran, ["first"]);
});

const outer = defineEndpoint("demo.outer", { request: z.object({}), response: z.literal("done") });
const middle = defineEndpoint("other.middle", {
  request: z.object({}),
  response: z.literal("done"),
});
const inner = defineEndpoint("demo.inner", { request: z.object({}), response: z.literal("done") });

Deno.test("[bus] a request a handler sends while serving one does not wait behind it", async () => {
  // demo (one turn) asks other, which asks demo back while demo's only turn waits for it: the
  // catalog's include check asks discounts, which asks the catalog who the caller is.
  await using client = await testBus();
  const demoBus = await servingBus(client, { serveConcurrency: 1 });
  const otherBus = await servingBus(client, { serveConcurrency: 1 });
  const demo = demoBus.serve({ name: "demo", version: "1.0.0" }, [
    route(outer, async () => await demoBus.request(middle, {})),
    route(inner, () => "done" as const),
  ]);
  const other = otherBus.serve({ name: "other", version: "1.0.0" }, [
    route(middle, async () => await otherBus.request(inner, {})),
  ]);
  await Promise.all([demoBus.nc.flush(), otherBus.nc.flush()]);
  try {
    assert.equal(await client.bus.request(outer, {}, { timeoutMs: 2_000 }), "done");
  } finally {
    await Promise.all([demo.stop(), other.stop()]);
    await Promise.all([demoBus.close(), otherBus.close()]);
  }
});

// The admission itself, without a bus: turns that record what they were asked to do. Each test
// below was added after a mutation review found the rule it checks could break with every test
// above still passing.

type Outcome = "served" | "busy" | "late";

/** A turn that records its outcome; its serving ends when `finish` is called (or at once). */
function recordedTurn(outcomes: Outcome[], held = false) {
  let finish!: () => void;
  const finished = held ? new Promise<void>((resolve) => finish = resolve) : Promise.resolve();
  const turn = {
    serve: async () => {
      outcomes.push("served");
      await finished;
    },
    refuse: (why: "busy" | "late") => {
      outcomes.push(why);
      return Promise.resolve();
    },
  };
  return { turn, finish: () => finish?.() };
}

const farAhead = () => Date.now() + 60_000;

Deno.test("[bus] Admission gives back a request's bytes when its turn comes", async () => {
  const admission = new Admission(1, 200);
  const outcomes: Outcome[] = [];
  const first = recordedTurn(outcomes, true);
  const running = admission.admit({ bytes: 10, deadline: farAhead() }, first.turn);
  const second = recordedTurn(outcomes, true);
  const waited = admission.admit({ bytes: 150, deadline: farAhead() }, second.turn);
  first.finish();
  await running;
  // The second runs now: its 150 bytes no longer wait, so another 150 may.
  const third = recordedTurn(outcomes);
  const alsoWaited = admission.admit({ bytes: 150, deadline: farAhead() }, third.turn);
  second.finish();
  await within(2_000, "the second and third", Promise.all([waited, alsoWaited]));
  assert.deepEqual(outcomes, ["served", "served", "served"]);
});

Deno.test("[bus] Admission answers every one of thousands of waiting requests exactly once", async () => {
  // Past 1,024 taken from the front the list is compacted: each request must still get its turn.
  const admission = new Admission(1);
  const outcomes: Outcome[] = [];
  const first = recordedTurn(outcomes, true);
  const all = [admission.admit({ bytes: 1, deadline: farAhead() }, first.turn)];
  for (let i = 0; i < 3_000; i++) {
    all.push(admission.admit({ bytes: 1, deadline: farAhead() }, recordedTurn(outcomes).turn));
  }
  assert.equal(admission.waiting, 3_000);
  first.finish();
  await within(10_000, "3,001 requests", Promise.all(all));
  assert.equal(outcomes.length, 3_001);
  assert.ok(outcomes.every((outcome) => outcome === "served"));
  assert.equal(admission.waiting, 0);
});

/** Runs `count` turns of about `ms` each, one after the other, so the admission learns them. */
async function turnsOf(admission: Admission, count: number, ms: number) {
  for (let i = 0; i < count; i++) {
    await admission.admit({ bytes: 1, deadline: farAhead() }, {
      serve: () => new Promise((resolve) => setTimeout(resolve, ms)),
      refuse: () => Promise.reject(new Error("refused while idle")),
    });
  }
}

Deno.test("[bus] Admission's estimate of a turn follows the turns it serves", async () => {
  const admission = new Admission(1);
  // First turns that take nothing, then turns of 50 ms: the estimate moves to them (~40 ms).
  await turnsOf(admission, 1, 0);
  await turnsOf(admission, 30, 50);
  const outcomes: Outcome[] = [];
  const running = recordedTurn(outcomes, true);
  const served = admission.admit({ bytes: 1, deadline: farAhead() }, running.turn);
  // Its wait (a turn, ~40 ms) is more than half of its 60 ms: refused at once. Stuck at the first
  // turn's ~0 ms, the estimate would have let it wait and miss.
  await admission.admit(
    { bytes: 1, deadline: Date.now() + 60 },
    recordedTurn(outcomes).turn,
  );
  assert.deepEqual(outcomes, ["served", "busy"]);
  running.finish();
  await served;
});

Deno.test("[bus] Admission refuses a request whose wait leaves less than a turn before its deadline", async () => {
  // Four turns at once, each ~100 ms: one frees every ~25 ms. A request with 115 ms left would
  // wait ~25 ms (within half its time) but then need ~100 ms more: it would miss, so it is
  // refused now.
  const admission = new Admission(4);
  await turnsOf(admission, 1, 100);
  const outcomes: Outcome[] = [];
  const running = [0, 1, 2, 3].map(() => recordedTurn(outcomes, true));
  const served = running.map((r) => admission.admit({ bytes: 1, deadline: farAhead() }, r.turn));
  await admission.admit({ bytes: 1, deadline: Date.now() + 115 }, recordedTurn(outcomes).turn);
  assert.deepEqual(outcomes, ["served", "served", "served", "served", "busy"]);
  for (const r of running) r.finish();
  await Promise.all(served);
});
