/**
 * `deno task bench`: the gateway -> NATS -> catalog -> Postgres read path against a single
 * process doing the same reads (bench/baseline.ts), both measured in one run on one machine.
 *
 * It starts the whole system on a database and bus prefix of its own, seeds 20 event topics and
 * one published event through the API, checks that both targets answer with the same bytes,
 * then loads each scenario closed-loop, alternating gateway and baseline so drift hits both.
 * Everything it made is removed at the end (processes, database, fact stream).
 *
 * Flags: --json (print the results as JSON), --concurrency N (32), --warmup S (2),
 * --duration S (5, per target and scenario), --rounds N (2: slices the duration alternates in),
 * --cpu (also CPU milliseconds per request of each process, from /proc), --log (show the
 * children's output).
 */
import { parseArgs } from "node:util";
import { ensureDatabase } from "@shared/db.ts";
import { startSystem } from "../scripts/start.ts";
import { addCpu, type CpuSnapshot, cpuSnapshot, findProcesses, perRequest } from "./cpu.ts";
import { type LoadRun, runLoad, summarize } from "./load.ts";
import { compare, formatCpu, formatResult, type ScenarioResult } from "./report.ts";
import { formatAuditResult, runAuditBench } from "./audit.ts";
import { formatRace, runDiscountsBench } from "./discounts.ts";
import { formatCacheResult, runCacheBench } from "./cache.ts";
import {
  benchSettings,
  dropDatabase,
  dropFactStream,
  seed,
  spawnDeno,
  stopChild,
  waitForOk,
} from "./setup.ts";

const TOPICS = 20;

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean", default: false },
    log: { type: "boolean", default: false },
    cpu: { type: "boolean", default: false },
    concurrency: { type: "string", default: "32" },
    warmup: { type: "string", default: "2" },
    duration: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    only: { type: "string" },
  },
});

const PARTS = ["catalog", "discounts", "audit", "cache"];
/** Which parts run: all by default, or one of them (`--only`). */
const parts = new Set(flags.only ? [flags.only] : PARTS);
for (const part of parts) {
  if (!PARTS.includes(part)) {
    throw new Error(`Cannot run the benchmark: --only takes ${PARTS.join(", ")}`);
  }
}

function positive(name: string, raw: string): number {
  const value = Number(raw);
  if (!(value > 0)) throw new Error(`Cannot run the benchmark: --${name} must be positive`);
  return value;
}

const concurrency = Math.round(positive("concurrency", flags.concurrency));
const warmupMs = positive("warmup", flags.warmup) * 1000;
const durationMs = positive("duration", flags.duration) * 1000;
const rounds = Math.round(positive("rounds", flags.rounds));

function progress(message: string): void {
  if (!flags.json) console.error(message);
}

const { suffix, databaseUrl, natsUrl, prefix, admin, gatewayPort, baselinePort, env } =
  benchSettings("");

let stopSystem: (() => Promise<void>) | undefined;
let baseline: Deno.ChildProcess | undefined;
let cleaning: Promise<void> | undefined;

function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    if (baseline) await stopChild(baseline);
    if (stopSystem) await stopSystem();
    await dropDatabase(databaseUrl).catch((error) => {
      console.error(
        `Cannot drop ${databaseUrl}: ${error instanceof Error ? error.message : error}`,
      );
    });
    await dropFactStream(natsUrl, prefix).catch((error) => {
      console.error(
        `Cannot delete the fact stream: ${error instanceof Error ? error.message : error}`,
      );
    });
  })();
  return cleaning;
}

Deno.addSignalListener("SIGINT", async () => {
  await cleanUp();
  Deno.exit(130);
});

/** Fetches both targets once and fails unless they answer 200 with the same bytes. */
async function sameAnswer(gatewayUrl: string, baselineUrl: string): Promise<string> {
  const [a, b] = await Promise.all([gatewayUrl, baselineUrl].map(async (url) => {
    const response = await fetch(url);
    return { status: response.status, body: await response.text() };
  }));
  if (a.status !== 200 || b.status !== 200) {
    throw new Error(`Cannot compare: statuses ${a.status} (gateway) and ${b.status} (baseline)`);
  }
  if (a.body !== b.body) {
    throw new Error(
      `Cannot compare: the gateway and the baseline answer ${gatewayUrl} differently`,
    );
  }
  return a.body;
}

async function measure(name: string, path: string): Promise<ScenarioResult> {
  const targets = {
    gateway: `http://127.0.0.1:${gatewayPort}${path}`,
    baseline: `http://127.0.0.1:${baselinePort}${path}`,
  };
  const runs: Record<keyof typeof targets, LoadRun[]> = { gateway: [], baseline: [] };
  const cpu: Record<keyof typeof targets, CpuSnapshot> = {
    gateway: new Map(),
    baseline: new Map(),
  };
  const load = (url: string, ms: number) => runLoad(url, { concurrency, durationMs: ms });
  progress(`${name}: warming up`);
  await load(targets.gateway, warmupMs);
  await load(targets.baseline, warmupMs);
  // After the warm-up, so every pooled Postgres connection exists.
  const processes = flags.cpu ? await findProcesses({ prefix, databaseUrl }) : new Map();
  const slice = durationMs / rounds;
  for (let round = 0; round < rounds; round++) {
    // A B, then B A: a linear drift over the run costs both sides the same.
    const order = round % 2 === 0
      ? ["gateway", "baseline"] as const
      : ["baseline", "gateway"] as const;
    for (const target of order) {
      progress(`${name}: ${target} ${round + 1}/${rounds}`);
      const before = cpuSnapshot(processes);
      runs[target].push(await load(targets[target], slice));
      addCpu(cpu[target], before, cpuSnapshot(processes));
    }
  }
  for (const [target, list] of Object.entries(runs)) {
    const failed = list.find((run) => run.errors > 0);
    if (failed) console.error(`${name}: ${target} had errors (first: ${failed.firstError})`);
  }
  const result = compare(name, summarize(runs.gateway), summarize(runs.baseline));
  if (flags.cpu) {
    result.cpuMsPerRequest = {
      gateway: perRequest(cpu.gateway, result.gateway.requests),
      baseline: perRequest(cpu.baseline, result.baseline.requests),
    };
  }
  return result;
}

const began = performance.now();
let failed = false;
const jsonOut: Record<string, unknown> = {};
if (parts.has("catalog")) {
  try {
    progress(`Starting the system (database oe_bench_${suffix}, bus prefix ${prefix})...`);
    // Made here, before the services start: two services creating it at once can race.
    await ensureDatabase(databaseUrl);
    const system = await startSystem({ env, output: flags.log, timeoutMs: 120_000 });
    stopSystem = system.stop;
    const seeded = await seed(system.url, admin, { topics: TOPICS });
    baseline = spawnDeno("bench/baseline.ts", {
      ...Deno.env.toObject(),
      ...env,
      PORT: String(baselinePort),
    }, {
      output: flags.log,
    });
    await waitForOk(`http://127.0.0.1:${baselinePort}/v1/events/${seeded.eventId}`, 60_000);

    const scenarios = [
      { name: `GET /v1/event-topics (${TOPICS} topics)`, path: "/v1/event-topics" },
      { name: "GET /v1/events/{id}", path: `/v1/events/${seeded.eventId}` },
    ];
    for (const { path } of scenarios) {
      const body = await sameAnswer(
        `${system.url}${path}`,
        `http://127.0.0.1:${baselinePort}${path}`,
      );
      if (path === "/v1/event-topics" && JSON.parse(body).data.length !== TOPICS) {
        throw new Error(`Cannot compare: /v1/event-topics does not list ${TOPICS} topics`);
      }
    }
    progress(
      `Measuring: ${concurrency} connections, ${warmupMs / 1000} s warm-up, ` +
        `${durationMs / 1000} s per target in ${rounds} alternating slices`,
    );
    const results: ScenarioResult[] = [];
    for (const { name, path } of scenarios) results.push(await measure(name, path));
    failed = results.some((r) => r.gateway.errors > 0 || r.baseline.errors > 0);

    jsonOut.settings = { concurrency, warmupMs, durationMs, rounds };
    jsonOut.catalog = results;
    if (!flags.json) {
      console.log("");
      console.log(results.map((r) => formatResult(r) + formatCpu(r)).join("\n\n"));
    }
  } catch (error) {
    failed = true;
    console.error(error instanceof Error ? error.message : String(error));
  } finally {
    await cleanUp();
  }
}

// Each of these starts a system of its own and removes it afterwards.
if (parts.has("discounts")) {
  try {
    progress("Discounts: checkout lookup through the gateway vs a single process, then the race");
    const result = await runDiscountsBench({ concurrency, warmupMs, durationMs, log: flags.log });
    jsonOut.discounts = result;
    if (!result.race.exact) failed = true;
    if (!flags.json) console.log(`\n${formatResult(result.lookup)}\n${formatRace(result.race)}`);
  } catch (error) {
    failed = true;
    console.error(error instanceof Error ? error.message : String(error));
  }
}
if (parts.has("audit")) {
  try {
    progress("Audit: draining a backlog of facts into activities, and publishing cost on writes");
    const result = await runAuditBench();
    jsonOut.audit = result;
    if (!flags.json) console.log(`\n${formatAuditResult(result)}`);
  } catch (error) {
    failed = true;
    console.error(error instanceof Error ? error.message : String(error));
  }
}
if (parts.has("cache")) {
  try {
    progress("Cache: public reads with the gateway's cache on vs a single process, then churn");
    const result = await runCacheBench({
      concurrency,
      warmupMs,
      durationMs,
      rounds,
      log: flags.log,
    });
    jsonOut.cache = result;
    if (!result.met) failed = true;
    if (!flags.json) console.log(`\n${formatCacheResult(result)}`);
  } catch (error) {
    failed = true;
    console.error(error instanceof Error ? error.message : String(error));
  }
}
if (flags.json) console.log(JSON.stringify(jsonOut, null, 2));
else console.log(`\n(measured in ${((performance.now() - began) / 1000).toFixed(1)} s)`);
Deno.exit(failed ? 1 : 0);
