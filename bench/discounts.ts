/**
 * The discounts benchmark (issue 3), two measurements in one run on a system of its own
 * (separate processes, two discounts instances):
 *
 * 1. Checkout lookup: `GET /v1/events/{identifier}/discount-codes/{code}` through gateway ->
 *    NATS -> discounts (-> NATS -> catalog for the event) -> Postgres, against
 *    bench/discounts_baseline.ts doing the same reads in one process. Both must answer the same
 *    bytes first. Target: gateway throughput >= 0.75x the baseline's.
 * 2. The reservation race: a code with tickets-number 10, 200 concurrent `reserve` requests of
 *    one use each over the bus; wall time and the exact number that succeed (must be 10).
 *
 * Run alone: `deno run -A bench/discounts.ts [--json] [--concurrency N] [--duration S]`, or from
 * another module: `const result = await runDiscountsBench({ durationMs: 5000 })`.
 */
import { parseArgs } from "node:util";
import { Bus } from "@shared/bus.ts";
import { ConflictError } from "@shared/errors.ts";
import { discountsRedemption } from "@shared/subjects.ts";
import { startSystem } from "../scripts/start.ts";
import { addCpu, type CpuSnapshot, cpuSnapshot, findProcesses, perRequest } from "./cpu.ts";
import { runLoad, summarize } from "./load.ts";
import { compare, formatResult, type ScenarioResult } from "./report.ts";
import {
  adminSession,
  api,
  benchSettings,
  dropDatabase,
  dropFactStream,
  resourceBody,
  spawnDeno,
  stopChild,
  waitForOk,
} from "./setup.ts";

export interface DiscountsBenchOptions {
  concurrency?: number;
  warmupMs?: number;
  durationMs?: number;
  /** Concurrent reservations in the race (default 200) and the code's cap (default 10). */
  racers?: number;
  cap?: number;
  log?: boolean;
  /** Also CPU milliseconds per request of every process (from /proc). */
  cpu?: boolean;
}

type Target = "gateway" | "baseline";

export interface RaceResult {
  racers: number;
  cap: number;
  succeeded: number;
  refused: number;
  otherErrors: number;
  wallMs: number;
  usedCount: number;
  exact: boolean;
}

export interface DiscountsBenchResult {
  lookup: ScenarioResult;
  race: RaceResult;
}

/** A published event with a ticket and two codes: LOOKUP (unlimited) and RACE (capped). */
async function seed(baseUrl: string, admin: { email: string; password: string }, cap: number) {
  const { token, create } = await adminSession(baseUrl, admin);
  const event = await create(
    "/v1/events",
    resourceBody("event", {
      name: "Bench conference",
      "starts-at": "2030-03-01T09:00:00+08:00",
      "ends-at": "2030-03-03T18:00:00+08:00",
      state: "published",
    }),
  );
  const ofEvent = { event: { data: { type: "event", id: event.id } } };
  const ticket = await create(
    "/v1/tickets",
    resourceBody("ticket", { name: "Standard", type: "paid", price: "25.00" }, {
      relationships: ofEvent,
    }),
  );
  const code = async (text: string, attributes: Record<string, unknown>) =>
    (await create(
      "/v1/discount-codes",
      resourceBody("discount-code", {
        code: text,
        value: "5",
        type: "amount",
        "used-for": "ticket",
        ...attributes,
      }, {
        relationships: { ...ofEvent, tickets: { data: [{ type: "ticket", id: ticket.id }] } },
      }),
    )).id;
  await code("LOOKUP", {});
  const raceId = await code("RACE", { "tickets-number": cap });
  return { identifier: event.attributes.identifier, raceId, token };
}

async function race(
  env: Record<string, string>,
  codeId: string,
  racers: number,
  cap: number,
  baseUrl: string,
  token: string,
): Promise<RaceResult> {
  const bus = await Bus.connect({ url: env.NATS_URL, prefix: env.BUS_PREFIX, name: "bench-race" });
  try {
    const began = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: racers }, (_, i) =>
        bus.request(
          discountsRedemption.reserve,
          { codeId, orderId: `bench-${i}`, quantity: 1 },
          { timeoutMs: 30_000 },
        )),
    );
    const wallMs = performance.now() - began;
    const succeeded = results.filter((r) => r.status === "fulfilled").length;
    const refused = results.filter((r) =>
      r.status === "rejected" && r.reason instanceof ConflictError
    ).length;
    const doc = await api(`${baseUrl}/v1/discount-codes/${codeId}`, { token });
    const usedCount = Number(
      (doc.data as { attributes: Record<string, unknown> }).attributes["used-count"],
    );
    return {
      racers,
      cap,
      succeeded,
      refused,
      otherErrors: racers - succeeded - refused,
      wallMs: Math.round(wallMs * 10) / 10,
      usedCount,
      exact: succeeded === cap && usedCount === cap,
    };
  } finally {
    await bus.close();
  }
}

/**
 * The lookup through the gateway against the baseline, once both answer the same bytes: a warm-up
 * of each, then gateway, baseline, baseline, gateway for half the duration each.
 */
async function measureLookup(
  targets: Record<Target, string>,
  options: {
    concurrency: number;
    warmupMs: number;
    durationMs: number;
    /** Where to find the system's processes, to measure their CPU time too. */
    cpu?: { prefix: string; databaseUrl: string };
  },
): Promise<ScenarioResult> {
  const { concurrency, warmupMs, durationMs } = options;
  const [a, b] = await Promise.all(
    [targets.gateway, targets.baseline].map(async (url) => (await fetch(url)).text()),
  );
  if (a !== b) throw new Error("Cannot compare: the gateway and the baseline answer differently");
  const load = (url: string, ms: number) => runLoad(url, { concurrency, durationMs: ms });
  await load(targets.gateway, warmupMs);
  await load(targets.baseline, warmupMs);
  // After the warm-up, so every pooled Postgres connection exists.
  const processes = options.cpu ? await findProcesses(options.cpu) : new Map();
  const runs = {
    gateway: [] as Awaited<ReturnType<typeof load>>[],
    baseline: [] as Awaited<ReturnType<typeof load>>[],
  };
  const cpu = { gateway: new Map(), baseline: new Map() } as Record<Target, CpuSnapshot>;
  const measured = async (target: Target) => {
    const before = cpuSnapshot(processes);
    runs[target].push(await load(targets[target], durationMs / 2));
    addCpu(cpu[target], before, cpuSnapshot(processes));
  };
  // A B, then B A: a drift over the run costs both sides the same.
  for (const target of ["gateway", "baseline", "baseline", "gateway"] as const) {
    await measured(target);
  }
  const lookup = compare(
    "GET /v1/events/{id}/discount-codes/{code}",
    summarize(runs.gateway),
    summarize(runs.baseline),
  );
  if (options.cpu) {
    lookup.cpuMsPerRequest = {
      gateway: perRequest(cpu.gateway, lookup.gateway.requests),
      baseline: perRequest(cpu.baseline, lookup.baseline.requests),
    };
  }
  return lookup;
}

export async function runDiscountsBench(
  options: DiscountsBenchOptions = {},
): Promise<DiscountsBenchResult> {
  const concurrency = options.concurrency ?? 32;
  const warmupMs = options.warmupMs ?? 2000;
  const durationMs = options.durationMs ?? 5000;
  const racers = options.racers ?? 200;
  const cap = options.cap ?? 10;
  const { databaseUrl, natsUrl, prefix, admin, baselinePort, env } = benchSettings(
    "discounts_",
  );

  let stopSystem: (() => Promise<void>) | undefined;
  let baseline: Deno.ChildProcess | undefined;
  try {
    const system = await startSystem({
      env,
      instances: { discounts: 2 },
      output: options.log ?? false,
      timeoutMs: 120_000,
    });
    stopSystem = system.stop;
    const seeded = await seed(system.url, admin, cap);
    baseline = spawnDeno("bench/discounts_baseline.ts", {
      ...Deno.env.toObject(),
      ...env,
      PORT: String(baselinePort),
    }, { output: options.log ?? false });
    const path = `/v1/events/${seeded.identifier}/discount-codes/lookup`;
    const targets = {
      gateway: `${system.url}${path}`,
      baseline: `http://127.0.0.1:${baselinePort}${path}`,
    };
    await waitForOk(targets.baseline, 60_000);
    const lookup = await measureLookup(targets, {
      concurrency,
      warmupMs,
      durationMs,
      cpu: options.cpu ? { prefix, databaseUrl } : undefined,
    });
    const raced = await race(env, seeded.raceId, racers, cap, system.url, seeded.token);
    return { lookup, race: raced };
  } finally {
    if (baseline) await stopChild(baseline);
    if (stopSystem) await stopSystem();
    await dropDatabase(databaseUrl).catch(() => {});
    await dropFactStream(natsUrl, prefix).catch(() => {});
  }
}

/** The race as text. */
export function formatRace(race: RaceResult): string {
  return [
    `reservation race: ${race.racers} concurrent reserve(1) on a code with tickets-number ${race.cap}`,
    `  succeeded ${race.succeeded}, refused ${race.refused}, other errors ${race.otherErrors}`,
    `  used-count ${race.usedCount}, wall time ${race.wallMs} ms: ${
      race.exact ? "exact" : "NOT EXACT"
    }`,
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      log: { type: "boolean", default: false },
      concurrency: { type: "string", default: "32" },
      duration: { type: "string", default: "5" },
    },
  });
  const result = await runDiscountsBench({
    concurrency: Number(values.concurrency),
    durationMs: Number(values.duration) * 1000,
    log: values.log,
  });
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else console.log(`${formatResult(result.lookup)}\n\n${formatRace(result.race)}`);
  Deno.exit(result.race.exact ? 0 : 1);
}
