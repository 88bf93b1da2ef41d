/**
 * How much memory a gateway holds, idle and after many distinct URLs, under V8 flags (issue 11,
 * item 5). Starts the system once (scripts/start.ts), seeds 10 event topics, then runs one extra
 * gateway (bench/memory_gateway.ts) per `--config`, all at once, and prints for each (one JSON
 * line): RSS at start, after a warm-up and after `--urls` distinct reads of
 * /v1/event-topics?page[size]=1&page[number]=N; V8's heap figures at those points; its CPU per
 * cache hit (before and after) and per miss, from /proc/<pid>/stat.
 *
 * A config is `name[@urls]=<deno flags and VAR=value words>`, complete: the launch flags of
 * scripts/launch.ts are not added, so `none=` is a plain `deno run`.
 *
 * `--catalogs N` runs N catalogs; N > 1 can fail at start (the catalogs race to create the first
 * admin in the new database).
 *
 * Run: `deno run -A bench/memory_probe.ts --urls 200000 --config "none="
 * --config "ofs=--v8-flags=--optimize-for-size"`
 */
import { parseArgs } from "node:util";
import { startSystem } from "../scripts/start.ts";
import { ensureDatabase } from "@shared/db.ts";
import { freePort } from "@shared/net.ts";
import {
  adminSession,
  benchSettings,
  dropDatabase,
  dropFactStream,
  resourceBody,
  stopChild,
  waitForOk,
} from "./setup.ts";
import { cpuSeconds } from "./cpu.ts";

function status(pid: number) {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024 };
}

async function heapReport(pid: number, file: string): Promise<HeapReport | undefined> {
  await Deno.remove(file).catch(() => {});
  Deno.kill(pid, "SIGUSR2");
  for (let i = 0; i < 100; i++) {
    try {
      const text = await Deno.readTextFile(file);
      if (text.endsWith("\n")) return JSON.parse(text);
    } catch {
      // Not written yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

const mib = (bytes: number) => Math.round(bytes / 1048576 * 10) / 10;

interface HeapReport {
  usage: Deno.MemoryUsage;
  heap: { malloced_memory: number };
  spaces: Record<string, { size: number; used: number }>;
}

function summary(report: HeapReport | undefined) {
  if (!report) return {};
  const s = report.spaces;
  return {
    heapTotal: mib(report.usage.heapTotal),
    heapUsed: mib(report.usage.heapUsed),
    external: mib(report.usage.external),
    newSpace: mib(s.new_space.size),
    oldSize: mib(s.old_space.size),
    oldUsed: mib(s.old_space.used),
    lo: mib(s.large_object_space.size),
    code: mib(s.code_space.size),
    malloced: mib(report.heap.malloced_memory),
  };
}

async function drive(urls: (i: number) => string, count: number, concurrency: number) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const n = next++;
      await (await fetch(urls(n))).arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** CPU the process `pid` spent per request (µs) while `work` sent `requests`. */
async function cpuPer(pid: number, requests: number, work: () => Promise<void>) {
  const before = cpuSeconds(String(pid));
  await work();
  return Math.round((cpuSeconds(String(pid)) - before) * 1e6 / requests);
}

/** One probe gateway (bench/memory_gateway.ts) with `flags` and `env` on a port of its own. */
function spawnGateway(systemEnv: Record<string, string>, flags: string[], env: Env) {
  const port = freePort();
  const file = `/tmp/memory_probe_${Deno.pid}_${port}.json`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", ...flags, "bench/memory_gateway.ts"],
    cwd: new URL("../", import.meta.url),
    env: { ...systemEnv, ...env, PORT: String(port), MEMORY_PROBE_FILE: file },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return { child, file, base: `http://127.0.0.1:${port}` };
}

type Env = Record<string, string>;

async function measure(systemEnv: Env, config: Config, options: { urls: number; hits: number }) {
  const { child, file, base } = spawnGateway(systemEnv, config.flags, config.env);
  const { hits } = options;
  const urls = config.urls ?? options.urls;
  try {
    await waitForOk(`${base}/health`, 60_000);
    const pid = child.pid;
    const started = status(pid).rss;
    const hitUrl = `${base}/v1/event-topics?page[size]=1&page[number]=1`;
    await drive(() => hitUrl, 2_000, 32); // warm-up: JIT, the cache's first entry
    const idle = status(pid);
    const idleHeap = summary(await heapReport(pid, file));
    const sample = await fetch(`${base}/v1/event-topics?page[size]=1&page[number]=99999999`);
    const sampleBytes = (await sample.arrayBuffer()).byteLength;
    const hitUs = await cpuPer(pid, hits, () => drive(() => hitUrl, hits, 32));
    const began = performance.now();
    const missUs = await cpuPer(
      pid,
      urls,
      () => drive((n) => `${base}/v1/event-topics?page[size]=1&page[number]=${n + 2}`, urls, 32),
    );
    const seconds = Math.round((performance.now() - began) / 1000);
    const after = status(pid);
    const afterHeap = summary(await heapReport(pid, file));
    const hitAfterUs = await cpuPer(pid, hits, () => drive(() => hitUrl, hits, 32));
    const final = status(pid).rss;
    return {
      ...config,
      started,
      idle,
      idleHeap,
      after,
      afterHeap,
      final,
      sampleBytes,
      seconds,
      hitUs,
      hitAfterUs,
      missUs,
    };
  } finally {
    await stopChild(child);
    await Deno.remove(file).catch(() => {});
  }
}

interface Config {
  name: string;
  flags: string[];
  env: Env;
  /** Distinct URLs for this config alone (`name@N=`), instead of `--urls`. */
  urls?: number;
}

/** `name=--flag ENV=value ...`: words starting with `-` are Deno's, the others environment. */
function parseConfig(text: string): Config {
  const [label, ...rest] = text.split("=");
  const [name, urls] = label.split("@");
  const words = rest.join("=").split(" ").filter(Boolean);
  const env = Object.fromEntries(
    words.filter((w) => !w.startsWith("-")).map((w) => w.split("=") as [string, string]),
  );
  const flags = words.filter((w) => w.startsWith("-"));
  return { name, flags, env, urls: urls ? Number(urls) : undefined };
}

async function seedTopics(url: string, admin: { email: string; password: string }) {
  const { create } = await adminSession(url, admin);
  for (let i = 1; i <= 10; i++) {
    await create("/v1/event-topics", resourceBody("event-topic", { name: `T${i}` }));
  }
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      urls: { type: "string" },
      hits: { type: "string" },
      config: { type: "string", multiple: true },
      catalogs: { type: "string" },
    },
  });
  const urls = Number(args.urls ?? 200_000);
  const hits = Number(args.hits ?? 20_000);
  const configs = args.config?.length ? args.config : ["none="];
  const settings = benchSettings("mem_");
  let stop: (() => Promise<void>) | undefined;
  try {
    await ensureDatabase(settings.databaseUrl);
    const system = await startSystem({
      env: settings.env,
      output: false,
      timeoutMs: 120_000,
      // Every miss is a catalog query: more instances keep the gateways, not it, the bottleneck.
      instances: { catalog: Number(args.catalogs ?? 1) },
    });
    stop = system.stop;
    await seedTopics(system.url, settings.admin);
    // In parallel: the figures are each gateway's own (RSS, its CPU per request).
    await Promise.all(configs.map(async (config) => {
      const result = await measure(system.env, parseConfig(config), { urls, hits });
      console.log(JSON.stringify(result));
    }));
  } finally {
    if (stop) await stop();
    await dropDatabase(settings.databaseUrl).catch(() => {});
    await dropFactStream(settings.natsUrl, settings.prefix).catch(() => {});
  }
}
