/**
 * The cache benchmark (issue 11), on a system of its own (every service, two gateways with the
 * response cache on, a single-process baseline):
 *
 * 1. Public reads, anonymous: `GET /v1/event-topics` (10 topics), `GET /v1/events/{id}`,
 *    `GET /v1/events/{id}/tickets` and the checkout lookup, through the gateway (cache on)
 *    against bench/cache_baseline.ts, which reads Postgres every time. The same documents are
 *    checked byte-identical first. Targets: >= 2x the baseline's throughput, p99 no worse.
 * 2. Mixed: 95 % of those reads, 5 % writes that invalidate them (an event's description, a
 *    topic's name, as the admin). The writes go through the gateway on both sides (the baseline
 *    serves reads only): the same writes cost both runs alike. Target: >= 1.2x.
 * 3. Staleness: a write through one gateway, then anonymous reads through the other until they
 *    show it; milliseconds from the write's reply. Target: p99 <= 50 ms.
 * 4. Signed-in reads (never cached): `GET /v1/events/{id}` with a token, which the baseline too
 *    verifies and reads the event as (bench/baseline.ts). Target: p99 <= 2x, in the closed loop
 *    of every scenario; reported with each process's CPU per request, and (not judged) both
 *    sides at one fixed rate below saturation (bench/load.ts's `runAtRate`).
 * 5. Memory: 200,000 distinct URLs through one gateway; its RSS after, against
 *    CACHE_MAX_BYTES + 64 MiB.
 *
 * Run alone: `deno run -A bench/cache.ts [--duration S] [--header-timeout MS] [--only PARTS]`, or
 * from bench/main.ts (`--only cache`). `--only signed-in,staleness` runs those parts alone (of
 * reads, signed-in, mixed, staleness, memory): a signed-in run takes about 40 s instead of minutes,
 * for trying a change against the one target still open; only the targets of the parts that ran
 * are judged.
 */
import { parseArgs } from "node:util";
import { ensureDatabase } from "@shared/db.ts";
import { startSystem } from "../scripts/start.ts";
import { percentile, runAtRate, runLoad, summarize } from "./load.ts";
import { addCpu, type CpuSnapshot, cpuSnapshot, findProcesses, perRequest } from "./cpu.ts";
import { FLOOR_PATH } from "./hono_floor.ts";
import type { LoadRequest, LoadRun } from "./load.ts";
import {
  compare,
  formatCpu,
  formatGatewayBudget,
  formatResult,
  formatTable,
  meets,
  type ScenarioResult,
  type Targets,
} from "./report.ts";
import { freePort } from "@shared/net.ts";
import {
  type AdminSession,
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

const JSONAPI = "application/vnd.api+json";
const TOPICS = 10;
const CACHE_MAX_BYTES = 64 * 1024 * 1024;

/** Issue 11's targets for each comparison (the same bounds judge the run and label its lines). */
const TARGETS = {
  /** Each public read, cache on, against the baseline. */
  reads: { minThroughput: 2, maxP99: 1 },
  mixed: { minThroughput: 1.2 },
  /** Never cached; throughput is reported, not judged. */
  signedIn: { maxP99: 2 },
} as const satisfies Record<string, Targets>;

/** The parts of the benchmark, in the order they run. */
export const CACHE_PARTS = ["reads", "signed-in", "mixed", "staleness", "memory"] as const;
export type CachePart = typeof CACHE_PARTS[number];

export interface CacheBenchOptions {
  /** The parts to run (default: all). */
  parts?: readonly CachePart[];
  concurrency?: number;
  warmupMs?: number;
  durationMs?: number;
  rounds?: number;
  /** HEADER_TIMEOUT_MS of the gateways (default: as deployed). */
  headerTimeoutMs?: number;
  /** Distinct URLs of the memory check (default 200,000; 0 skips it). */
  memoryUrls?: number;
  /** Writes whose staleness is measured (default 200). */
  staleness?: number;
  log?: boolean;
}

export interface StalenessResult {
  writes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  met: boolean;
}

export interface MemoryResult {
  urls: number;
  /** The gateway's RSS before (it had served the staleness reads only). */
  idleMiB: number;
  seconds: number;
  rssMiB: number;
  limitMiB: number;
  met: boolean;
}

/** The results of the parts that ran; a part that did not run leaves its field out. */
export interface CacheBenchResult {
  parts: CachePart[];
  /** Empty when the reads did not run. */
  reads: ScenarioResult[];
  /** Share of 100 sequential reads the cache answered, right after each read scenario. */
  hitShare: number[];
  mixed?: ScenarioResult;
  /** Judged: the closed loop, as every scenario; with each process's CPU per request. */
  signedIn?: ScenarioResult;
  /** Not judged: both sides at one fixed rate, half the gateway path's closed-loop throughput. */
  signedInAtRate?: ScenarioResult & { ratePerSecond: number };
  /**
   * Not judged: the gateway against the bus floor (bench/bus_floor.ts), a gateway that does nothing
   * but the one bus round trip: how much of the split's cost any work on the gateway could save.
   */
  signedInBusFloor?: ScenarioResult;
  staleness?: StalenessResult;
  memory?: MemoryResult;
  /** Whether every target of the parts that ran was met. */
  met: boolean;
}

interface Seeded {
  token: string;
  eventId: string;
  topicIds: string[];
  ticketIds: string[];
  reads: { name: string; path: string }[];
}

/** 10 topics, a published event with three tickets and a discount code, as the admin. */
async function seed(baseUrl: string, admin: { email: string; password: string }): Promise<Seeded> {
  const { token, create } = await adminSession(baseUrl, admin);
  const topicIds: string[] = [];
  for (let i = 1; i <= TOPICS; i++) {
    topicIds.push(
      (await create("/v1/event-topics", resourceBody("event-topic", { name: `T${i}` }))).id,
    );
  }
  const event = await create(
    "/v1/events",
    resourceBody("event", {
      name: "Bench conference",
      description: "A published event the benchmark reads back.",
      "starts-at": "2030-03-01T09:00:00+08:00",
      "ends-at": "2030-03-03T18:00:00+08:00",
      state: "published",
    }, {
      relationships: { "event-topic": { data: { type: "event-topic", id: topicIds[0] } } },
    }),
  );
  return { token, ...await seedEvent(create, event), topicIds };
}

/** Three tickets and the discount code LOOKUP for `event`; the four reads it offers. */
async function seedEvent(
  create: AdminSession["create"],
  event: { id: string; attributes: Record<string, string> },
) {
  const ofEvent = { event: { data: { type: "event", id: event.id } } };
  const tickets = [];
  for (const name of ["Standard", "Student", "Supporter"]) {
    const attributes = { name, type: "paid", price: "25.00", quantity: 100 };
    tickets.push(
      await create("/v1/tickets", resourceBody("ticket", attributes, { relationships: ofEvent })),
    );
  }
  await create(
    "/v1/discount-codes",
    resourceBody("discount-code", {
      code: "LOOKUP",
      value: "5",
      type: "amount",
      "used-for": "ticket",
    }, {
      relationships: {
        ...ofEvent,
        tickets: { data: tickets.map((ticket) => ({ type: "ticket", id: ticket.id })) },
      },
    }),
  );
  return {
    eventId: event.id,
    ticketIds: tickets.map((ticket) => ticket.id),
    reads: [
      { name: `GET /v1/event-topics (${TOPICS} topics)`, path: "/v1/event-topics" },
      { name: "GET /v1/events/{id}", path: `/v1/events/${event.id}` },
      { name: "GET /v1/events/{id}/tickets", path: `/v1/events/${event.id}/tickets` },
      {
        name: "GET /v1/events/{identifier}/discount-codes/{code}",
        path: `/v1/events/${event.attributes.identifier}/discount-codes/LOOKUP`,
      },
    ],
  };
}

/** Fails unless both URLs answer 200 with the same bytes (`headers` sent to both). */
async function sameAnswer(a: string, b: string, headers: Record<string, string> = {}) {
  const [x, y] = await Promise.all([fetch(a, { headers }), fetch(b, { headers })]);
  const [tx, ty] = [await x.text(), await y.text()];
  if (x.status !== 200 || y.status !== 200 || tx !== ty) {
    throw new Error(`Cannot compare: ${a} and ${b} answer differently (${x.status}, ${y.status})`);
  }
}

type Target = string | (() => LoadRequest);

/** Where each side listens; the floor (bench/hono_floor.ts) runs with the signed-in part only. */
interface SideUrls {
  gateway: string;
  baseline: string;
  floor?: string;
  busFloor?: string;
}

/** The share of 100 sequential reads of `url` that the gateway's cache answered. */
async function hits(url: string): Promise<number> {
  let hit = 0;
  for (let i = 0; i < 100; i++) {
    const response = await fetch(url);
    await response.arrayBuffer();
    if (response.headers.get("X-Cache") === "HIT") hit++;
  }
  return hit / 100;
}

/** How `alternate` loads a target, beyond the closed loop of every scenario. */
interface AlternateExtras {
  /** Each side's processes: their CPU per request is added to the result. */
  processes?: Map<string, string[]>;
  /** Requests per second of an open loop (`runAtRate`, one URL per side) instead of the closed loop. */
  ratePerSecond?: number;
}

/** Loads two targets in alternating slices (A B, then B A) after a warm-up of each. */
async function alternate(
  name: string,
  targets: { gateway: Target; baseline: Target },
  options: Required<Pick<CacheBenchOptions, "concurrency" | "warmupMs" | "durationMs" | "rounds">>,
  headers?: Record<string, string>,
  extras: AlternateExtras = {},
): Promise<ScenarioResult> {
  const { processes, ratePerSecond } = extras;
  const load = (target: Target, ms: number) => {
    if (!ratePerSecond) {
      return runLoad(target, { concurrency: options.concurrency, durationMs: ms, headers });
    }
    if (typeof target !== "string") throw new Error(`${name}: a fixed rate takes one URL per side`);
    return runAtRate(target, { ratePerSecond, durationMs: ms, headers });
  };
  await load(targets.gateway, options.warmupMs);
  await load(targets.baseline, options.warmupMs);
  const runs: { gateway: LoadRun[]; baseline: LoadRun[] } = { gateway: [], baseline: [] };
  const cpu = { gateway: new Map() as CpuSnapshot, baseline: new Map() as CpuSnapshot };
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0
      ? ["gateway", "baseline"] as const
      : ["baseline", "gateway"] as const;
    for (const side of order) {
      const before = processes && cpuSnapshot(processes);
      runs[side].push(await load(targets[side], options.durationMs / options.rounds));
      if (processes && before) addCpu(cpu[side], before, cpuSnapshot(processes));
    }
  }
  for (const [side, list] of Object.entries(runs)) {
    const failed = list.find((run) => run.errors > 0);
    if (failed) console.error(`${name}: ${side} had errors (first: ${failed.firstError})`);
  }
  const result = compare(name, summarize(runs.gateway), summarize(runs.baseline));
  if (processes) {
    result.cpuMsPerRequest = {
      gateway: perRequest(cpu.gateway, result.gateway.requests),
      baseline: perRequest(cpu.baseline, result.baseline.requests),
    };
  }
  return result;
}

/**
 * The mixed load's next request: every 20th a write through the gateway, else a read. Writes
 * take turns over the event, its tickets and the topics, so they do not all queue on one row.
 */
function mixedPicker(base: string, gateway: string, seeded: Seeded): () => LoadRequest {
  let i = 0;
  const headers = {
    Accept: JSONAPI,
    "Content-Type": JSONAPI,
    Authorization: `JWT ${seeded.token}`,
  };
  return () => {
    const n = i++;
    if (n % 20 !== 19) return { url: `${base}${seeded.reads[n % seeded.reads.length].path}` };
    const rows = [
      ...seeded.topicIds.map((id) => ({ type: "event-topic", id, name: `Topic renamed ${n}` })),
      ...seeded.ticketIds.map((id) => ({ type: "ticket", id, description: `Edit ${n}` })),
      { type: "event", id: seeded.eventId, description: `Edit ${n}` },
    ];
    const { type, id, ...attributes } = rows[Math.floor(n / 20) % rows.length];
    return {
      url: `${gateway}/v1/${type}s/${id}`,
      init: { method: "PATCH", headers, body: JSON.stringify({ data: { type, id, attributes } }) },
    };
  };
}

/** Writes through gateway `a`, then reads through `b` until it shows the write. */
async function staleness(a: string, b: string, seeded: Seeded, writes: number) {
  const path = `/v1/events/${seeded.eventId}`;
  const delays = new Float64Array(writes);
  for (let i = 0; i < writes; i++) {
    const name = `Staleness ${i} ${crypto.randomUUID()}`;
    await (await fetch(`${b}${path}`)).arrayBuffer(); // b holds the old page
    await api(`${a}${path}`, {
      method: "PATCH",
      token: seeded.token,
      body: resourceBody("event", { name }, { id: seeded.eventId }),
    });
    const written = performance.now();
    while (!(await (await fetch(`${b}${path}`)).text()).includes(name)) {
      if (performance.now() - written > 5_000) throw new Error("Cannot see a write after 5 s");
    }
    delays[i] = performance.now() - written;
  }
  delays.sort();
  const round = (ms: number) => Math.round(ms * 100) / 100;
  const p99Ms = round(percentile(delays, 0.99));
  return {
    writes,
    p50Ms: round(percentile(delays, 0.5)),
    p99Ms,
    maxMs: round(delays[writes - 1]),
    met: p99Ms <= 50,
  };
}

/** The pid of this run's process running `script` on `port` (Linux /proc), if any. */
function pidOf(script: string, prefix: string, port: number): string | undefined {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (!cmdline.includes(script)) continue;
      const environ = Deno.readTextFileSync(`/proc/${entry.name}/environ`);
      if (environ.includes(`\0BUS_PREFIX=${prefix}\0`) && environ.includes(`\0PORT=${port}\0`)) {
        return entry.name;
      }
    } catch {
      // Gone, or not ours to read.
    }
  }
  return undefined;
}

function rssMiB(pid: string): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** Sends `urls` distinct anonymous reads through `gateway`, then reads its RSS. */
async function memory(gateway: string, pid: string, urls: number, concurrency: number) {
  const idle = rssMiB(pid);
  let next = 0;
  const began = performance.now();
  const worker = async () => {
    while (next < urls) {
      const n = next++;
      await (await fetch(`${gateway}/v1/event-topics?page[size]=1&page[number]=${n + 1}`))
        .arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const rss = rssMiB(pid);
  const limitMiB = CACHE_MAX_BYTES / 1024 / 1024 + 64;
  return {
    urls,
    idleMiB: Math.round(idle),
    seconds: Math.round((performance.now() - began) / 100) / 10,
    rssMiB: Math.round(rss),
    limitMiB,
    met: rss < limitMiB,
  };
}

/** Cache on vs the baseline for each public read, then signed-in reads and the mixed load. */
async function comparisons(
  urls: SideUrls,
  seeded: Seeded,
  options: Required<Pick<CacheBenchOptions, "concurrency" | "warmupMs" | "durationMs" | "rounds">>,
  where: { prefix: string; databaseUrl: string },
  parts: ReadonlySet<CachePart>,
) {
  const reads: ScenarioResult[] = [];
  const hitShare: number[] = [];
  for (const { name, path } of parts.has("reads") ? seeded.reads : []) {
    await sameAnswer(`${urls.gateway}${path}`, `${urls.baseline}${path}`);
    const targets = { gateway: `${urls.gateway}${path}`, baseline: `${urls.baseline}${path}` };
    reads.push(await alternate(`${name}, cache on`, targets, options));
    hitShare.push(await hits(`${urls.gateway}${path}`));
  }
  const signed = parts.has("signed-in")
    ? await signedInReads(urls, seeded, options, where)
    : undefined;
  // Last: its writes leave facts for the consumers to work through.
  const mixed = parts.has("mixed")
    ? await alternate("Mixed: 95 % reads, 5 % writes", {
      gateway: mixedPicker(urls.gateway, urls.gateway, seeded),
      baseline: mixedPicker(urls.baseline, urls.gateway, seeded),
    }, options)
    : undefined;
  return { reads, hitShare, mixed, ...signed };
}

/**
 * Signed-in reads, never cached: the closed loop of every scenario (the target is judged on
 * it), with each process's CPU per request; then both sides at one fixed rate, half what the
 * gateway path sustained in the closed loop, for the latency a signed-in client sees when
 * neither side is saturated.
 */
async function signedInReads(
  urls: SideUrls,
  seeded: Seeded,
  options: Required<Pick<CacheBenchOptions, "concurrency" | "warmupMs" | "durationMs" | "rounds">>,
  where: { prefix: string; databaseUrl: string },
) {
  const path = `/v1/events/${seeded.eventId}`;
  const auth = { Authorization: `JWT ${seeded.token}` };
  const targets = { gateway: `${urls.gateway}${path}`, baseline: `${urls.baseline}${path}` };
  await sameAnswer(targets.gateway, targets.baseline, auth);
  // Found after a first load, so that every pool's Postgres connections are open.
  await runLoad(targets.gateway, {
    concurrency: options.concurrency,
    durationMs: 500,
    headers: auth,
  });
  await runLoad(targets.baseline, {
    concurrency: options.concurrency,
    durationMs: 500,
    headers: auth,
  });
  const { floor: floorPids = [], "bus floor": busFloorPids = [], ...sides } = Object.fromEntries(
    await findProcesses(where),
  );
  // The floors are loaded on their own afterwards: their idle CPU is no part of either side.
  const processes = new Map(Object.entries(sides));
  const signedIn = await alternate(
    "GET /v1/events/{id} signed in (never cached)",
    targets,
    options,
    auth,
    { processes },
  );
  if (urls.floor && signedIn.cpuMsPerRequest) {
    const floor = { url: urls.floor, pids: floorPids };
    signedIn.cpuMsPerRequest.floor = await floorCpu(floor, targets.baseline, auth, options);
  }
  const ratePerSecond = Math.max(1, Math.round(signedIn.gateway.rps / 2));
  const signedInAtRate = {
    ...await alternate(
      `GET /v1/events/{id} signed in, ${ratePerSecond} req/s to each side (open loop)`,
      targets,
      options,
      auth,
      { ratePerSecond },
    ),
    ratePerSecond,
  };
  const signedInBusFloor = urls.busFloor
    ? await againstBusFloor(
      { gateway: targets.gateway, busFloor: `${urls.busFloor}${path}` },
      options,
      auth,
      new Map([...processes, ["bus floor", busFloorPids]]),
    )
    : undefined;
  return { signedIn, signedInAtRate, signedInBusFloor };
}

/**
 * The gateway against the bus floor (bench/bus_floor.ts) in alternating slices, as every
 * comparison: loaded one after the other, the later of two found the catalog cheaper per read (it
 * warms for longer than the warm-up), and a floor loaded last looked better than it is.
 */
async function againstBusFloor(
  targets: { gateway: string; busFloor: string },
  options: Required<Pick<CacheBenchOptions, "concurrency" | "warmupMs" | "durationMs" | "rounds">>,
  auth: Record<string, string>,
  processes: Map<string, string[]>,
): Promise<ScenarioResult> {
  await sameAnswer(targets.busFloor, targets.gateway, auth);
  // The single process idles meanwhile: its CPU is no part of either side here.
  const sides = new Map([...processes].filter(([role]) => role !== "baseline"));
  return await alternate(
    "GET /v1/events/{id} signed in, the gateway against the bus floor (bench/bus_floor.ts)",
    { gateway: targets.gateway, baseline: targets.busFloor },
    options,
    auth,
    { processes: sides },
  );
}

/**
 * CPU per request of the floor (bench/hono_floor.ts) answering the document `source` answers,
 * in the closed loop of every scenario: the least any Hono gateway on Deno.serve spends.
 */
async function floorCpu(
  floor: { url: string; pids: string[] },
  source: string,
  headers: Record<string, string>,
  options: Required<Pick<CacheBenchOptions, "concurrency" | "warmupMs" | "durationMs" | "rounds">>,
): Promise<Record<string, number>> {
  const document = await fetch(source, { headers });
  const put = await fetch(`${floor.url}${FLOOR_PATH}`, {
    method: "PUT",
    headers: { "Content-Type": document.headers.get("Content-Type") ?? JSONAPI },
    body: await document.arrayBuffer(),
  });
  await put.body?.cancel();
  await sameAnswer(floor.url, source, headers);
  const load = { concurrency: options.concurrency, headers };
  await runLoad(floor.url, { ...load, durationMs: options.warmupMs });
  // Only the floor and the load generator: every other process is idle meanwhile.
  const processes = new Map([["floor", floor.pids], ["load generator", [String(Deno.pid)]]]);
  const before = cpuSnapshot(processes);
  const run = await runLoad(floor.url, {
    ...load,
    durationMs: options.durationMs / options.rounds,
  });
  const used: CpuSnapshot = new Map();
  addCpu(used, before, cpuSnapshot(processes));
  return perRequest(used, run.requests);
}

/** Whether every target of the parts that ran was met. */
function targetsMet(result: Omit<CacheBenchResult, "met">): boolean {
  const { reads, mixed, signedIn, staleness, memory } = result;
  return reads.every((r) => meets(r, TARGETS.reads)) &&
    (!mixed || meets(mixed, TARGETS.mixed)) && (!signedIn || meets(signedIn, TARGETS.signedIn)) &&
    (staleness?.met ?? true) && (memory?.met ?? true);
}

/** The environment of the benchmark's system: the cache on, the header clock as asked. */
function systemEnv(settings: { env: Record<string, string> }, options: CacheBenchOptions) {
  const env: Record<string, string> = {
    ...settings.env,
    CACHE_MAX_BYTES: String(CACHE_MAX_BYTES),
  };
  if (options.headerTimeoutMs !== undefined) {
    env.HEADER_TIMEOUT_MS = String(options.headerTimeoutMs);
  }
  return env;
}

/** Staleness and memory, the parts that need the second gateway (on `second.port`). */
async function twoGatewayParts(
  first: string,
  second: { url: string; port: number; prefix: string },
  seeded: Seeded,
  options: CacheBenchOptions & { concurrency: number },
  parts: ReadonlySet<CachePart>,
): Promise<{ staleness?: StalenessResult; memory?: MemoryResult }> {
  const stale = parts.has("staleness")
    ? await staleness(first, second.url, seeded, options.staleness ?? 200)
    : undefined;
  const urls = options.memoryUrls ?? 200_000;
  const pid = parts.has("memory")
    ? pidOf("gateway/main.ts", second.prefix, second.port)
    : undefined;
  const mem = urls > 0 && pid
    ? await memory(second.url, pid, urls, options.concurrency)
    : undefined;
  return { staleness: stale, memory: mem };
}

/** The signed-in part's floors (bench/hono_floor.ts, bench/bus_floor.ts), each on its own port. */
function startFloors(spawn: (script: string, port: number) => void) {
  const [floorPort, busFloorPort] = [freePort(), freePort()];
  spawn("bench/hono_floor.ts", floorPort);
  spawn("bench/bus_floor.ts", busFloorPort);
  return { floor: `http://127.0.0.1:${floorPort}`, busFloor: `http://127.0.0.1:${busFloorPort}` };
}

/** Runs the cache benchmark (its `parts`) on a system of its own, which it removes afterwards. */
export async function runCacheBench(options: CacheBenchOptions = {}): Promise<CacheBenchResult> {
  const parts = new Set(options.parts ?? CACHE_PARTS);
  // The second gateway serves the staleness reads and takes the memory load.
  const needsSecond = parts.has("staleness") || parts.has("memory");
  const settings = benchSettings("cache_");
  const secondPort = freePort();
  const children: Deno.ChildProcess[] = [];
  let stopSystem: (() => Promise<void>) | undefined;
  try {
    await ensureDatabase(settings.databaseUrl);
    const system = await startSystem({
      env: systemEnv(settings, options),
      output: options.log ?? false,
      timeoutMs: 120_000,
    });
    stopSystem = system.stop;
    const seeded = await seed(system.url, settings.admin);
    const spawn = (script: string, port: number) =>
      children.push(spawnDeno(script, { ...system.env, PORT: String(port) }, {
        output: options.log,
      }));
    spawn("bench/cache_baseline.ts", settings.baselinePort);
    if (needsSecond) spawn("gateway/main.ts", secondPort);
    const floors = parts.has("signed-in") ? startFloors(spawn) : {};
    const baseline = `http://127.0.0.1:${settings.baselinePort}`;
    const second = `http://127.0.0.1:${secondPort}`;
    await waitForOk(`${baseline}${seeded.reads[1].path}`, 60_000);
    if (needsSecond) await waitForOk(`${second}/health`, 60_000);
    for (const url of Object.values(floors)) await waitForOk(`${url}/health`, 60_000);
    const loadOptions = {
      concurrency: options.concurrency ?? 32,
      warmupMs: options.warmupMs ?? 2_000,
      durationMs: options.durationMs ?? 5_000,
      rounds: options.rounds ?? 2,
    };
    const where = { prefix: settings.prefix, databaseUrl: settings.databaseUrl };
    const urls = { gateway: system.url, baseline, ...floors };
    const compared = await comparisons(urls, seeded, loadOptions, where, parts);
    const acrossTwo = await twoGatewayParts(
      system.url,
      { url: second, port: secondPort, prefix: settings.prefix },
      seeded,
      { ...options, concurrency: loadOptions.concurrency },
      parts,
    );
    const result = {
      parts: CACHE_PARTS.filter((part) => parts.has(part)),
      ...compared,
      ...acrossTwo,
    };
    return { ...result, met: targetsMet(result) };
  } finally {
    for (const child of children) await stopChild(child);
    if (stopSystem) await stopSystem();
    await dropDatabase(settings.databaseUrl).catch(() => {});
    await dropFactStream(settings.natsUrl, settings.prefix).catch(() => {});
  }
}

/** The results as text: each comparison's table, then staleness and memory. */
export function formatCacheResult(result: CacheBenchResult): string {
  const verdict = (met: boolean) => met ? "met" : "NOT met";
  const lines = result.reads.map((r, i) =>
    `${formatResult(r, TARGETS.reads)}\n  cache hits after the run: ${
      Math.round(result.hitShare[i] * 100)
    } %`
  );
  const { mixed, signedIn, signedInAtRate, signedInBusFloor, staleness: s, memory: m } = result;
  if (mixed) {
    lines.push(formatResult(mixed, TARGETS.mixed));
  }
  if (signedIn) {
    lines.push(
      formatResult(signedIn, TARGETS.signedIn) + formatCpu(signedIn) +
        formatGatewayBudget(signedIn, TARGETS.signedIn.maxP99),
    );
  }
  if (signedInAtRate) {
    lines.push(
      `${formatTable(signedInAtRate)}\n  p99 gateway/baseline ${
        signedInAtRate.p99Ratio.toFixed(2)
      }x at a load neither side is saturated by (information: the target is judged above)`,
    );
  }
  if (signedInBusFloor) lines.push(formatAgainstBusFloor(signedInBusFloor));
  if (s) {
    lines.push(
      `Staleness across two gateways (${s.writes} writes): p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, ` +
        `max ${s.maxMs} ms (target p99 <= 50 ms: ${verdict(s.met)})`,
    );
  }
  if (m) {
    lines.push(
      `Memory: ${m.urls} distinct URLs in ${m.seconds} s; gateway RSS ${m.idleMiB} MiB before, ` +
        `${m.rssMiB} MiB after ` +
        `(target < ${m.limitMiB} MiB: ${verdict(m.met)})`,
    );
  }
  if (result.parts.length < CACHE_PARTS.length) {
    lines.push(`Parts run: ${result.parts.join(", ")} (the other targets were not measured)`);
  }
  return lines.join("\n\n");
}

/** The gateway against the bus floor: what any work on the gateway could still save. */
function formatAgainstBusFloor(result: ScenarioResult): string {
  const names = { gateway: "gateway", baseline: "bus floor" };
  return [
    formatTable(result, names),
    `  throughput gateway/bus floor ${result.throughputRatio.toFixed(2)}x`,
    `  p99        gateway/bus floor ${result.p99Ratio.toFixed(2)}x (information: the floor is a ` +
    "gateway that does nothing but the bus round trip)",
  ].join("\n") + formatCpu(result, names);
}

/** The parts named by `--only` (comma-separated), or every part. */
export function partsOf(only: string | undefined): CachePart[] {
  if (only === undefined) return [...CACHE_PARTS];
  const named = only.split(",").map((part) => part.trim());
  const unknown = named.filter((part) => !(CACHE_PARTS as readonly string[]).includes(part));
  if (unknown.length > 0) {
    throw new Error(`Unknown part ${unknown.join(", ")}: use ${CACHE_PARTS.join(", ")}`);
  }
  return named as CachePart[];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      log: { type: "boolean", default: false },
      concurrency: { type: "string", default: "32" },
      duration: { type: "string", default: "5" },
      rounds: { type: "string", default: "2" },
      "header-timeout": { type: "string" },
      "memory-urls": { type: "string" },
      only: { type: "string" },
    },
  });
  const result = await runCacheBench({
    parts: partsOf(values.only),
    concurrency: Number(values.concurrency),
    durationMs: Number(values.duration) * 1000,
    rounds: Number(values.rounds),
    headerTimeoutMs: values["header-timeout"] ? Number(values["header-timeout"]) : undefined,
    memoryUrls: values["memory-urls"] ? Number(values["memory-urls"]) : undefined,
    log: values.log,
  });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatCacheResult(result));
  Deno.exit(result.met ? 0 : 1);
}
