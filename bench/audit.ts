/**
 * The audit benchmark (issue 5), two measurements in one run:
 *
 * 1. Drain: a backlog of 50,000 facts already in the stream (published while audit was down) is
 *    turned into activities by a freshly started audit service; activities per second from its
 *    start until the last row is written. Target: at least 10,000/s.
 * 2. Publishing on a write: `PATCH /v1/event-topics/{id}` through the gateway (in process, on
 *    the real bus and database). The request path records the fact in the outbox inside the
 *    write's transaction and never waits for JetStream (the relay publishes after the commit).
 *    Reported: the write's latency; the outbox insert's cost (the same update with and without
 *    its fact, as the request path runs it, on the same database), which is all the request
 *    path pays for the fact; the JetStream publish acknowledgement, the bound it must stay
 *    under; and how long after the answer the fact reaches the stream.
 *
 * Run alone: `deno run -A bench/audit.ts [--json] [--backlog N] [--writes N]`, or from another
 * module: `const result = await runAuditBench({ backlog: 50_000 })`.
 */
import { parseArgs } from "node:util";
import { jetstream } from "@nats-io/jetstream";
import { openDatabase, type Sql, transaction, type Tx } from "@shared/db.ts";
import { FACTS } from "@shared/fact_catalog.ts";
import { factSubject } from "@shared/fact_names.ts";
import { buildFact, changeWithFact, type Fact } from "@shared/facts.ts";
import { deleteFactStream, ensureFactStream } from "@shared/fact_streams.ts";
import { FactRelay } from "@shared/fact_relay.ts";
import { createLogger } from "@shared/log.ts";
import { testBus, testDatabase } from "@shared/testing.ts";
import { migrateAudit, SCHEMA, startAudit } from "../services/audit/service.ts";
import { catalogFact } from "../services/catalog/fact_payloads.ts";
import { startTestSystem, type TestSystem } from "@testing/system.ts";

/** Activities per second the drain must reach. */
const MIN_ACTIVITIES_PER_SECOND = 10_000;

export interface Percentiles {
  p50Ms: number;
  p99Ms: number;
}

export interface AuditBenchResult {
  drain: {
    facts: number;
    publishSeconds: number;
    drainSeconds: number;
    activitiesPerSecond: number;
    met: boolean;
  };
  write: {
    writes: number;
    /** PATCH through the gateway, fact recorded as shipped. */
    gateway: Percentiles;
    /** The same update in a transaction, with and without the outbox insert. */
    withOutbox: Percentiles;
    withoutOutbox: Percentiles;
    /** withOutbox.p50 - withoutOutbox.p50: what the fact adds to the request path. */
    addedP50Ms: number;
    /** A JetStream publish awaited for its acknowledgement (what publishing in-line would add). */
    jetstreamAck: Percentiles;
    /** From the answer to the fact arriving on the bus (asynchronous, off the request path). */
    publishLag: Percentiles;
    /** The request path waits less for the fact than a JetStream acknowledgement takes. */
    met: boolean;
  };
}

const quiet = createLogger("bench-audit", "error");
const round = (n: number) => Math.round(n * 1000) / 1000;

function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50Ms: round(at(0.5)), p99Ms: round(at(0.99)) };
}

function benchFact(n: number): Fact {
  return buildFact({
    type: "catalog.event.updated",
    actor: { id: String(1 + (n % 50)), email: `user${n % 50}@example.com` },
    data: {
      ...FACTS["catalog.event.updated"].example,
      id: String(1 + (n % 1000)),
      name: `Event ${n}`,
      owner: String(1 + (n % 50)),
    },
  });
}

async function drain(backlog: number): Promise<AuditBenchResult["drain"]> {
  await using db = await testDatabase();
  await using b = await testBus();
  await ensureFactStream(b.bus);
  const sql = await openDatabase(db.url, { schema: SCHEMA, max: 4 });
  try {
    await migrateAudit(sql);
    const js = jetstream(await b.bus.jetStreamConnection());
    const publishStart = performance.now();
    for (let i = 0; i < backlog; i += 1000) {
      await Promise.all(
        Array.from({ length: Math.min(1000, backlog - i) }, (_, j) => {
          const fact = benchFact(i + j);
          const subject = b.bus.subject(factSubject(fact.type));
          return js.publish(subject, JSON.stringify(fact), { msgID: fact.id });
        }),
      );
    }
    const publishSeconds = (performance.now() - publishStart) / 1000;
    const started = performance.now();
    const audit = await startAudit({ sql, bus: b.bus, log: quiet });
    let count = 0;
    while (count < backlog) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      [{ count }] = await sql`select count(*)::int as count from activities`;
    }
    const drainSeconds = (performance.now() - started) / 1000;
    await audit.stop();
    const activitiesPerSecond = Math.round(backlog / drainSeconds);
    return {
      facts: backlog,
      publishSeconds: round(publishSeconds),
      drainSeconds: round(drainSeconds),
      activitiesPerSecond,
      met: activitiesPerSecond >= MIN_ACTIVITIES_PER_SECOND,
    };
  } finally {
    await sql.end({ timeout: 5 });
    await deleteFactStream(b.bus);
  }
}

async function timed(times: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const began = performance.now();
    await fn(i);
    samples.push(performance.now() - began);
  }
  return samples;
}

/**
 * PATCHes through the gateway `count` times: each write's latency, and how long after each answer
 * its fact reached the bus.
 */
async function gatewayWrites(
  system: TestSystem,
  topic: string,
  count: number,
): Promise<{ gateway: number[]; lags: number[] }> {
  const token = system.admin.token;
  const patch = (i: number) =>
    system.call("PATCH", `/v1/event-topics/${topic}`, {
      token,
      body: { data: { type: "event-topic", id: topic, attributes: { name: `Bench ${i}` } } },
    });
  await timed(50, patch); // warm-up
  await system.catalog.relay.flush();

  // When each fact reaches the bus, against when its write was answered.
  const arrived = new Map<string, number>();
  const sub = system.bus.nc.subscribe(system.bus.subject("facts.catalog.event-topic.updated"), {
    callback: (_error, msg) => {
      arrived.set((msg.json<Fact>().data as { name: string }).name, performance.now());
    },
  });
  const answered = new Map<string, number>();
  const gateway = await timed(count, async (i) => {
    const reply = await patch(10_000 + i);
    if (reply.status !== 200) throw new Error(`Cannot benchmark: PATCH answered ${reply.status}`);
    answered.set(`Bench ${10_000 + i}`, performance.now());
  });
  await system.catalog.relay.flush();
  await system.bus.nc.flush();
  await new Promise((resolve) => setTimeout(resolve, 200));
  sub.unsubscribe();
  const lags = [...answered].flatMap(([name, at]) => {
    const seen = arrived.get(name);
    return seen === undefined ? [] : [seen - at];
  });
  return { gateway, lags };
}

/**
 * A relay that publishes only when flushed: one publishing between the timed writes would make
 * them wait on its work, which the request path does not.
 */
class FlushedRelay extends FactRelay {
  override kick(): void {}
}

/**
 * The same update with and without the fact, straight on the catalog's database, the way the
 * request path runs them: `transaction`, and `changeWithFact`.
 */
async function outboxCost(
  system: TestSystem,
  topic: string,
  count: number,
): Promise<{ without: number[]; withFact: number[] }> {
  const sql: Sql = system.sql;
  const relay = new FlushedRelay(sql, system.bus, quiet);
  const update = async (tx: Tx, i: number) =>
    (await tx`update event_topics set name = ${`Direct ${i}`} where id = ${topic} returning *`)[0];
  const without = await timed(count, (i) => transaction(sql, (tx) => update(tx, i)));
  const withFact = await timed(count, (i) =>
    changeWithFact(
      sql,
      relay,
      (tx) => update(tx, i),
      (row) => catalogFact(null, "event-topic", "updated", row),
    ));
  await relay.flush();
  return { without, withFact };
}

/** JetStream publishes, each awaited for its acknowledgement: what publishing in-line would add. */
async function jetstreamAcks(system: TestSystem, count: number): Promise<number[]> {
  const js = jetstream(await system.bus.jetStreamConnection());
  return await timed(count, (i) => {
    const fact = benchFact(i);
    const subject = system.bus.subject("facts.bench.event.updated");
    return js.publish(subject, JSON.stringify(fact), { msgID: fact.id });
  });
}

async function writes(count: number): Promise<AuditBenchResult["write"]> {
  await using system = await startTestSystem();
  const topic = await system.createTopic("Bench topic");
  const { gateway, lags } = await gatewayWrites(system, topic, count);
  const { without, withFact } = await outboxCost(system, topic, count);
  const acks = await jetstreamAcks(system, count);
  const withOutbox = percentiles(withFact);
  const withoutOutbox = percentiles(without);
  const jetstreamAck = percentiles(acks);
  const addedP50Ms = round(withOutbox.p50Ms - withoutOutbox.p50Ms);
  return {
    writes: count,
    gateway: percentiles(gateway),
    withOutbox,
    withoutOutbox,
    addedP50Ms,
    jetstreamAck,
    publishLag: percentiles(lags),
    met: addedP50Ms <= jetstreamAck.p50Ms,
  };
}

/** Runs both measurements; each on a database and bus prefix of its own, removed afterwards. */
export async function runAuditBench(
  options: { backlog?: number; writes?: number } = {},
): Promise<AuditBenchResult> {
  return {
    drain: await drain(options.backlog ?? 50_000),
    write: await writes(options.writes ?? 500),
  };
}

/** The result as a few lines of text. */
export function formatAuditResult(result: AuditBenchResult): string {
  const { drain: d, write: w } = result;
  const p = (x: Percentiles) => `p50 ${x.p50Ms.toFixed(2)} ms, p99 ${x.p99Ms.toFixed(2)} ms`;
  const verdict = (met: boolean) => met ? "met" : "NOT met";
  return [
    `Audit drain: ${d.facts} facts in ${
      d.drainSeconds.toFixed(2)
    } s = ${d.activitiesPerSecond} activities/s ` +
    `(target >= ${MIN_ACTIVITIES_PER_SECOND}: ${verdict(d.met)}; publishing the backlog took ${
      d.publishSeconds.toFixed(2)
    } s)`,
    `Fact publishing on a write (${w.writes} writes):`,
    `  PATCH through the gateway      ${p(w.gateway)}`,
    `  update + outbox insert         ${p(w.withOutbox)}`,
    `  update alone                   ${p(w.withoutOutbox)}`,
    `  added by the fact (p50)        ${w.addedP50Ms.toFixed(2)} ms`,
    `  JetStream publish ack          ${p(w.jetstreamAck)}`,
    `  answer -> fact on the bus      ${p(w.publishLag)} (after the answer, off the request path)`,
    `  request path waits less than a JetStream ack: ${verdict(w.met)}`,
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      backlog: { type: "string", default: "50000" },
      writes: { type: "string", default: "500" },
    },
  });
  const result = await runAuditBench({
    backlog: Number(values.backlog),
    writes: Number(values.writes),
  });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatAuditResult(result));
  Deno.exit(result.drain.met && result.write.met ? 0 : 1);
}
