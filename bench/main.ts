/**
 * `deno task bench`: the gateway -> NATS -> catalog -> Postgres read path against a single
 * process doing the same reads (bench/baseline.ts), both measured in one run on one machine; the
 * topic list also against a bare handler that sends the same rows as plain JSON (bench/bare.ts).
 *
 * It starts the whole system on a database and bus prefix of its own, seeds 20 event topics and
 * one published event through the API, checks that both targets answer with the same bytes (and
 * the bare handler with the same rows), then loads each scenario closed-loop, alternating the
 * sides so drift hits all of them.
 * Everything it made is removed at the end (processes, database, fact stream).
 *
 * Flags: --json (print the results as JSON), --concurrency N (32), --warmup S (2),
 * --duration S (5, per target and scenario), --rounds N (2: slices the duration alternates in),
 * --cpu (also CPU milliseconds per request of each process, from /proc), --log (show the
 * children's output), --only catalog|discounts|audit|writes (one part; writes: what a POST
 * costs every process, its fact and activity included, bench/writes.ts).
 */
import { parseArgs } from "node:util";
import { ensureDatabase } from "@shared/db.ts";
import { startSystem } from "../scripts/start.ts";
import { addCpu, type CpuSnapshot, cpuSnapshot, findProcesses, perRequest } from "./cpu.ts";
import { type LoadRun, runLoad, summarize } from "./load.ts";
import { compare, formatCpu, formatResult, type ScenarioResult, withBare } from "./report.ts";
import { BARE_PATH } from "./bare.ts";
import { freePort } from "@shared/net.ts";
import { formatAuditResult, runAuditBench } from "./audit.ts";
import { formatRace, runDiscountsBench } from "./discounts.ts";
import { formatWrites, runWritesBench } from "./writes.ts";
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

/** Which parts run: all by default, or one of them (`--only`). */
const PARTS = ["catalog", "discounts", "audit", "writes", "cache"];
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
const barePort = freePort();

let stopSystem: (() => Promise<void>) | undefined;
let baseline: Deno.ChildProcess | undefined;
let bare: Deno.ChildProcess | undefined;
let cleaning: Promise<void> | undefined;

function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    if (baseline) await stopChild(baseline);
    if (bare) await stopChild(bare);
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

type Side = "gateway" | "baseline" | "bare";

/**
 * Loads each side of a scenario in turn: `paths` names the path per side on its own port (the
 * bare handler only answers the topic list).
 */
async function measure(
  name: string,
  paths: Partial<Record<Side, string>>,
): Promise<ScenarioResult> {
  const ports: Record<Side, number> = {
    gateway: gatewayPort,
    baseline: baselinePort,
    bare: barePort,
  };
  const sides = (Object.keys(paths) as Side[]).filter((side) => paths[side] !== undefined);
  const url = (side: Side) => `http://127.0.0.1:${ports[side]}${paths[side]}`;
  const runs = new Map<Side, LoadRun[]>(sides.map((side) => [side, []]));
  const cpu = new Map<Side, CpuSnapshot>(sides.map((side) => [side, new Map()]));
  const load = (side: Side, ms: number) => runLoad(url(side), { concurrency, durationMs: ms });
  progress(`${name}: warming up`);
  for (const side of sides) await load(side, warmupMs);
  // After the warm-up, so every pooled Postgres connection exists.
  const processes = flags.cpu ? await findProcesses({ prefix, databaseUrl }) : new Map();
  const slice = durationMs / rounds;
  for (let round = 0; round < rounds; round++) {
    // A B C, then C B A: a linear drift over the run costs every side the same.
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      progress(`${name}: ${side} ${round + 1}/${rounds}`);
      const before = cpuSnapshot(processes);
      runs.get(side)!.push(await load(side, slice));
      addCpu(cpu.get(side)!, before, cpuSnapshot(processes));
    }
  }
  for (const [side, list] of runs) {
    const failed = list.find((run) => run.errors > 0);
    if (failed) console.error(`${name}: ${side} had errors (first: ${failed.firstError})`);
  }
  const summaries = new Map([...runs].map(([side, list]) => [side, summarize(list)]));
  let result = compare(name, summaries.get("gateway")!, summaries.get("baseline")!);
  const bare = summaries.get("bare");
  if (bare) result = withBare(result, bare);
  if (flags.cpu) {
    const used = (side: Side) => perRequest(cpu.get(side)!, summaries.get(side)!.requests);
    result.cpuMsPerRequest = {
      gateway: used("gateway"),
      baseline: used("baseline"),
      bare: bare ? used("bare") : undefined,
    };
  }
  return result;
}

/** Fails unless the bare handler answers the very rows the JSON:API list carries. */
async function sameRows(barePath: string, listBody: string): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${barePort}${barePath}`);
  const rows = await response.json() as { id: string; name: string }[];
  const data = JSON.parse(listBody).data as { id: string; attributes: { name: string } }[];
  const same = rows.length === data.length &&
    rows.every((row, i) => row.id === data[i].id && row.name === data[i].attributes.name);
  if (!same) throw new Error("Cannot compare: the bare handler answers other topics than the list");
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
    bare = spawnDeno("bench/bare.ts", { ...Deno.env.toObject(), ...env, PORT: String(barePort) }, {
      output: flags.log,
    });
    await waitForOk(`http://127.0.0.1:${baselinePort}/v1/events/${seeded.eventId}`, 60_000);
    await waitForOk(`http://127.0.0.1:${barePort}${BARE_PATH}`, 60_000);

    const scenarios: { name: string; path: string; bare?: string }[] = [
      {
        name: `GET /v1/event-topics (${TOPICS} topics)`,
        path: "/v1/event-topics",
        bare: BARE_PATH,
      },
      { name: "GET /v1/events/{id}", path: `/v1/events/${seeded.eventId}` },
    ];
    for (const { path, bare } of scenarios) {
      const body = await sameAnswer(
        `${system.url}${path}`,
        `http://127.0.0.1:${baselinePort}${path}`,
      );
      if (path === "/v1/event-topics" && JSON.parse(body).data.length !== TOPICS) {
        throw new Error(`Cannot compare: /v1/event-topics does not list ${TOPICS} topics`);
      }
      if (bare) await sameRows(bare, body);
    }
    progress(
      `Measuring: ${concurrency} connections, ${warmupMs / 1000} s warm-up, ` +
        `${durationMs / 1000} s per target in ${rounds} alternating slices`,
    );
    const results: ScenarioResult[] = [];
    for (const { name, path, bare } of scenarios) {
      results.push(await measure(name, { gateway: path, baseline: path, bare }));
    }
    failed = results.some((r) =>
      r.gateway.errors > 0 || r.baseline.errors > 0 || (r.bare?.errors ?? 0) > 0
    );

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
    const result = await runDiscountsBench({
      concurrency,
      warmupMs,
      durationMs,
      log: flags.log,
      cpu: flags.cpu,
    });
    jsonOut.discounts = result;
    if (!result.race.exact) failed = true;
    if (!flags.json) {
      console.log(`\n${formatResult(result.lookup)}${formatCpu(result.lookup)}`);
      console.log(formatRace(result.race));
    }
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
if (parts.has("writes")) {
  try {
    progress("Writes: POST /v1/event-topics until audit has recorded every fact");
    const result = await runWritesBench({
      concurrency: 8,
      durationMs,
      cpu: flags.cpu,
      log: flags.log,
    });
    jsonOut.writes = result;
    if (result.errors > 0) failed = true;
    if (!flags.json) console.log(`\n${formatWrites(result)}`);
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
