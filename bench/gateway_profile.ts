/**
 * Where one gateway's (or the catalog's, or the single-process baseline's) CPU or allocations go
 * under signed-in reads (never cached): starts the system, then one extra gateway (or catalog, or
 * bench/cache_baseline.ts) as deployed (scripts/launch.ts) with the inspector on, drives 32
 * connections of signed-in `GET /v1/events/{id}` at it (through the system's gateway for the
 * catalog: the two catalogs share the reads), profiles 10 s through the DevTools protocol and
 * prints the functions that took most samples (or allocated most bytes, per request). What
 * bench/FINDINGS.md's profiles of the gateway were made with; `--baseline` puts the single
 * process's profile beside the catalog's, `--bus-floor` bench/bus_floor.ts's beside the gateway's.
 *
 * Run: `deno run -A bench/gateway_profile.ts [--catalog | --baseline | --bus-floor]
 * [--heap | --promoted] [--v8-flags=...] [--out file]` (`--promoted` counts only what outlived a
 * young-generation collection, what the collector had to copy; `--v8-flags=...` replaces the
 * gateway's own or gives the others some; `--out` keeps the raw profile for DevTools).
 */
import { parseArgs } from "node:util";
import { startSystem } from "../scripts/start.ts";
import { denoRunArgs, GATEWAY_V8_FLAGS, launchEnv } from "../scripts/launch.ts";
import { ensureDatabase } from "@shared/db.ts";
import { freePort } from "@shared/net.ts";
import {
  adminSession,
  benchSettings,
  dropDatabase,
  dropFactStream,
  seed,
  stopChild,
  waitForOk,
} from "./setup.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
}
interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** A process (`script`) as launched, with the inspector on `inspectPort` and `v8Flags` if given. */
function spawnInspected(
  script: string,
  env: Record<string, string>,
  port: number,
  inspectPort: number,
  v8Flags?: string,
) {
  // The given flags replace the gateway's own; a service has none of its own.
  const args = denoRunArgs(script).filter((arg) => !(v8Flags && arg === GATEWAY_V8_FLAGS));
  args.splice(
    args.indexOf(script),
    0,
    `--inspect=127.0.0.1:${inspectPort}`,
    ...v8Flags ? [v8Flags] : [],
  );
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: new URL("../", import.meta.url),
    env: { ...launchEnv(script), ...env, PORT: String(port) },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** A DevTools protocol session on the inspector's first target. */
async function devtools(inspectPort: number) {
  const [target] = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json();
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve) => socket.onopen = resolve);
  const pending = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  };
  let id = 0;
  const send = (method: string, params: unknown = {}) =>
    new Promise<unknown>((resolve) => {
      pending.set(++id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => socket.close() };
}

/** Signed-in reads of `url` on 32 connections until stopped; counts the answers. */
function load(url: string, token: string) {
  let running = true;
  let answered = 0;
  const worker = async () => {
    while (running) {
      const response = await fetch(url, { headers: { Authorization: `JWT ${token}` } });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
      answered++;
    }
  };
  const workers = Array.from({ length: 32 }, worker);
  return {
    answered: () => answered,
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}

const where = (frame: CallFrame) =>
  `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber}`;

function printTop(totals: Map<string, number>, format: (value: number) => string, top = 30) {
  for (const [name, value] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${format(value).padStart(14)}  ${name}`);
  }
}

function summarizeCpu(profile: CpuProfile): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, where(node.callFrame)]));
  const totals = new Map<string, number>();
  for (const id of profile.samples) totals.set(byId.get(id)!, (totals.get(byId.get(id)!) ?? 0) + 1);
  const all = profile.samples.length;
  console.log(`${all} samples; share of each function's own time:`);
  printTop(totals, (n) => `${(100 * n / all).toFixed(1)} %`);
}

function summarizeHeap(head: HeapNode, requests: number): void {
  const totals = new Map<string, number>();
  const visit = (node: HeapNode) => {
    totals.set(where(node.callFrame), (totals.get(where(node.callFrame)) ?? 0) + node.selfSize);
    node.children.forEach(visit);
  };
  visit(head);
  const all = [...totals.values()].reduce((a, b) => a + b, 0);
  console.log(`${Math.round(all / requests)} bytes allocated per request; by function:`);
  printTop(totals, (bytes) => `${Math.round(bytes / requests)} B/req`);
}

/** Profiles the gateway on `inspectPort` for 10 s of `traffic`; prints and returns the profile. */
async function profile(
  inspectPort: number,
  heap: boolean,
  promoted: boolean,
  traffic: { answered(): number },
) {
  const session = await devtools(inspectPort);
  const [domain, start, stop] = heap
    ? ["HeapProfiler", "startSampling", "stopSampling"]
    : ["Profiler", "start", "stop"];
  await session.send(`${domain}.enable`);
  if (!heap) await session.send("Profiler.setSamplingInterval", { interval: 200 });
  // Collected objects too: what a request allocates is garbage by the time the profile stops.
  const sampling = {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: !promoted,
  };
  await session.send(`${domain}.${start}`, heap ? sampling : {});
  const before = traffic.answered();
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  const { profile } = await session.send(`${domain}.${stop}`) as { profile: unknown };
  const requests = traffic.answered() - before;
  session.close();
  console.log(`${requests} signed-in reads answered in the 10 s profiled`);
  if (heap) summarizeHeap((profile as { head: HeapNode }).head, requests);
  else summarizeCpu(profile as CpuProfile);
  return profile;
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      catalog: { type: "boolean" },
      baseline: { type: "boolean" },
      "bus-floor": { type: "boolean" },
      heap: { type: "boolean" },
      promoted: { type: "boolean" },
      "v8-flags": { type: "string" },
      out: { type: "string" },
    },
  });
  const settings = benchSettings("profile_");
  let stopSystem: (() => Promise<void>) | undefined;
  let inspected: Deno.ChildProcess | undefined;
  try {
    await ensureDatabase(settings.databaseUrl);
    const system = await startSystem({ env: settings.env, output: false, timeoutMs: 120_000 });
    stopSystem = system.stop;
    const { eventId } = await seed(system.url, settings.admin, { topics: 1 });
    const { token } = await adminSession(system.url, settings.admin);
    const [port, inspectPort] = [freePort(), freePort()];
    const v8Flags = args["v8-flags"] && `--v8-flags=${args["v8-flags"]}`;
    const script = args.catalog
      ? "services/catalog/main.ts"
      : args.baseline
      ? "bench/cache_baseline.ts"
      : args["bus-floor"]
      ? "bench/bus_floor.ts"
      : "gateway/main.ts";
    inspected = spawnInspected(script, system.env, port, inspectPort, v8Flags);
    // A service listens on no port: give it the time to connect, then it takes its share.
    if (args.catalog) await new Promise((resolve) => setTimeout(resolve, 4_000));
    else {
      // The baseline has no /health: its topic list answers once it can read Postgres.
      const ready = args.baseline ? "/v1/event-topics" : "/health";
      await waitForOk(`http://127.0.0.1:${port}${ready}`, 60_000);
    }
    const base = args.catalog ? system.url : `http://127.0.0.1:${port}`;
    const traffic = load(`${base}/v1/events/${eventId}`, token);
    await new Promise((resolve) => setTimeout(resolve, 5_000)); // warm-up: JIT, pools
    const result = await profile(
      inspectPort,
      (args.heap || args.promoted) ?? false,
      args.promoted ?? false,
      traffic,
    );
    await traffic.stop();
    if (args.out) await Deno.writeTextFile(args.out, JSON.stringify(result));
  } finally {
    if (inspected) await stopChild(inspected);
    if (stopSystem) await stopSystem();
    await dropDatabase(settings.databaseUrl).catch(() => {});
    await dropFactStream(settings.natsUrl, settings.prefix).catch(() => {});
  }
}
