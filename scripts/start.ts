/**
 * Starts the whole system: every service and the gateway as separate processes sharing one
 * JWT secret, then waits until `/health` says every service answers on the bus. From then on a
 * process that exits is restarted after 1 s, 2 s, 4 s... up to 30 s (RESTART_BACKOFF); one that
 * exits during start-up stops everything with exit code 1. Ctrl-C (or SIGTERM) stops them all
 * cleanly: each drains its NATS connection and finishes in-flight work; the servers it brought
 * along (scripts/embedded.ts) stop after them.
 *
 * Where the database and NATS come from: DATABASE_URL / NATS_URL when set; else whatever answers
 * on 127.0.0.1:5432 / 127.0.0.1:4222; else (and for `DATABASE_URL=embedded` / `NATS_URL=embedded`)
 * servers of its own, with their data in `.data/`. A failure the user can fix ends with one
 * line naming the cause and the fix, and exit code 1.
 *
 * Run: `deno task start`. Used as a library by the Dredd runner and the benchmark.
 */
import { Bus } from "@shared/bus.ts";
import { type Config, databaseSetting, loadConfig, serviceDatabaseUrl } from "@shared/config.ts";
import { ensureDatabase } from "@shared/db.ts";
import {
  atHost,
  describeStartFailure,
  exitWithError,
  STOP_AT_STDIN_END,
  userCausedLine,
} from "@shared/lifecycle.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { createLogger } from "@shared/log.ts";
import { serviceNames } from "@shared/contracts/mod.ts";
import { parseEncryptionKey } from "../services/payments/crypto.ts";
import {
  answers,
  type Backend,
  dataDir,
  ensurePortFree,
  startEmbeddedNats,
  startEmbeddedPostgres,
  StartError,
} from "./embedded.ts";
import { denoRunArgs, launchEnv, withInstanceId } from "./launch.ts";

export interface SystemOptions {
  /** Environment for every process, on top of this process's own. */
  env?: Record<string, string>;
  /** Instances per service (default 1 each). */
  instances?: Record<string, number>;
  /** Prefix each child's output lines with its name (default true); false discards it. */
  output?: boolean;
  /** How long to wait for `/health` (default 90 s: the first start may download packages). */
  timeoutMs?: number;
  /** Where what was started so far is kept, so a signal during start-up can stop it. */
  stack?: StopStack;
  /**
   * Once the system is ready, restart a process that exits, with a growing delay
   * (RESTART_BACKOFF), as `deno task start` does. Default false: the tests and benchmarks want a
   * lost process to show (`exited`), not to be papered over.
   */
  restart?: boolean;
}

export interface RunningSystem {
  url: string;
  env: Record<string, string>;
  /**
   * Resolves with a process's name if one exits before `stop()` was called (after the system was
   * ready only without `restart`: with it, such a process is restarted instead).
   */
  exited: Promise<string>;
  /** What was started besides the services (embedded Postgres, nats-server), for the user. */
  brought: string[];
  stop(): Promise<void>;
}

/** Stops what was started in reverse order: the services first, the servers they use last. */
export class StopStack {
  #stops: (() => Promise<void>)[] = [];
  push(stop: () => Promise<void>): void {
    this.#stops.push(stop);
  }
  async stopAll(): Promise<void> {
    while (this.#stops.length) await this.#stops.pop()!().catch(() => {});
  }
}

const root = new URL("../", import.meta.url);

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function pipeLines(stream: ReadableStream<Uint8Array>, name: string, to: "out" | "err") {
  const writer = to === "out" ? Deno.stdout : Deno.stderr;
  const encoder = new TextEncoder();
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) await writer.write(encoder.encode(`[${name}] ${line}\n`));
  }
  if (pending) await writer.write(encoder.encode(`[${name}] ${pending}\n`));
}

function spawn(name: string, script: string, env: Record<string, string>, output: boolean) {
  const child = new Deno.Command(Deno.execPath(), {
    args: denoRunArgs(script),
    cwd: root,
    // Each process's traces and metrics carry its name (with OTEL_DENO=true; see the README).
    // Its stdin is a pipe we never write to: when this process dies, even SIGKILLed, it ends
    // and the child stops too (shared/lifecycle.ts), instead of serving on with a stale secret.
    env: {
      ...launchEnv(script),
      ...env,
      OTEL_SERVICE_NAME: name,
      OTEL_RESOURCE_ATTRIBUTES: withInstanceId(env.OTEL_RESOURCE_ATTRIBUTES),
      [STOP_AT_STDIN_END]: "1",
      // Nothing stands in front of this gateway to drain it from, and a delay taken from the
      // shell would outlast the 10 s after which stop() kills what is still running (a review).
      SHUTDOWN_DELAY_MS: "0",
    },
    stdin: "piped",
    stdout: output ? "piped" : "null",
    stderr: "piped",
  }).spawn();
  // Without output, the last lines are still kept: a process that dies at start says why.
  const lastLines: string[] = [];
  if (output) {
    pipeLines(child.stdout, name, "out").catch(() => {});
    pipeLines(child.stderr, name, "err").catch(() => {});
  } else {
    keepLastLines(child.stderr, lastLines).catch(() => {});
  }
  return { name, child, lastLines };
}

async function keepLastLines(stream: ReadableStream<Uint8Array>, into: string[], keep = 3) {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    into.push(...chunk.split("\n").filter((line) => line.trim() !== ""));
    into.splice(0, Math.max(0, into.length - keep));
  }
}

async function waitHealthy(url: string, timeoutMs: number, exited: Promise<string>) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  let failed: string | undefined;
  exited.then((name) => failed = name);
  while (Date.now() < deadline) {
    if (failed) {
      throw new StartError(
        `Cannot start the system: ${failed} exited during start-up; its last line above says why.`,
      );
    }
    try {
      const response = await fetch(`${url}/health`);
      last = await response.text();
      if (response.status === 200) return;
    } catch {
      // The gateway is not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new StartError(`Cannot start the system: /health did not turn healthy (${last})`);
}

/** The configuration every process will read; a bad setting stops here, before anything runs. */
function readConfig(env: Record<string, string>): Config {
  const real = (name: string) => env[name] === "embedded" ? "" : env[name];
  const config = loadConfig({
    ...env,
    DATABASE_URL: real("DATABASE_URL"),
    NATS_URL: real("NATS_URL"),
  });
  // Payments would refuse a malformed key on its own, as one of five processes' output.
  if (config.paymentsEncryptionKey) parseEncryptionKey(config.paymentsEncryptionKey);
  return config;
}

/**
 * The database: DATABASE_URL, else the default address if it answers, else an embedded one
 * (never silently in production mode: there a missing database is an error).
 */
async function provideDatabase(env: Record<string, string>, config: Config, stack: StopStack) {
  if (env.DATABASE_URL && env.DATABASE_URL !== "embedded") return undefined;
  if (!env.DATABASE_URL && await answers("127.0.0.1", 5432)) return undefined;
  if (!env.DATABASE_URL && config.production) {
    throw new StartError(
      "Cannot start in production mode: nothing answers on 127.0.0.1:5432. Set DATABASE_URL " +
        "(or DATABASE_URL=embedded for a Postgres of this project's own).",
    );
  }
  const where = `${dataDir(env)}/postgres`;
  console.log(`Starting an embedded Postgres (data in ${where}; the first start downloads it)...`);
  const backend = await startEmbeddedPostgres(env);
  stack.push(backend.stop);
  return backend;
}

/** NATS: NATS_URL, else the default address if it answers, else one of our own. */
async function provideNats(env: Record<string, string>, config: Config, stack: StopStack) {
  if (env.NATS_URL && env.NATS_URL !== "embedded") return undefined;
  if (!env.NATS_URL && await answers("127.0.0.1", 4222)) return undefined;
  if (!env.NATS_URL && config.production) {
    throw new StartError(
      "Cannot start in production mode: nothing answers on 127.0.0.1:4222. Set NATS_URL " +
        "(or NATS_URL=embedded for a nats-server of this project's own).",
    );
  }
  const backend = await startEmbeddedNats(env);
  stack.push(backend.stop);
  return backend;
}

/** Connects once to every database and to NATS, so a refusal is one line, not one per process. */
async function checkBackends(
  env: Record<string, string>,
  config: Config,
  defaults: string[],
): Promise<void> {
  const urls = new Map(
    serviceNames.map((name) => [serviceDatabaseUrl(name, env), databaseSetting(name, env)]),
  );
  for (const [url, setting] of urls) {
    try {
      await ensureDatabase(url);
    } catch (error) {
      const line = describeStartFailure("open the database", error, { url, setting });
      // The default address answered but refused: the embedded one is the other way out.
      const other = defaults.includes("DATABASE_URL") ? " (Or set DATABASE_URL=embedded.)" : "";
      throw new StartError(line + other);
    }
  }
  let bus: Bus;
  try {
    const logger = createLogger("start", "error");
    bus = await Bus.connect({ url: config.natsUrl, prefix: config.busPrefix, logger });
  } catch (error) {
    throw new StartError(describeStartFailure("connect to NATS", error, { url: config.natsUrl }));
  }
  try {
    // Each process opens a second connection for its JetStream traffic: one refused (a server at
    // its max_connections) is named as the first would be, not as JetStream missing (a review).
    const connection = await bus.jetStreamConnection().catch((error) => {
      throw new StartError(describeStartFailure("connect to NATS", error, { url: config.natsUrl }));
    });
    // Facts live on JetStream: without it every service would fail its start one by one.
    await jetstreamManager(connection, { timeout: 2000 }).catch(() => {
      throw new StartError(
        `Cannot use NATS${atHost(config.natsUrl)}: JetStream is not enabled there. ` +
          "Start nats-server with -js, or set NATS_URL to one that has JetStream.",
      );
    });
  } finally {
    await bus.close();
  }
}

export async function startSystem(options: SystemOptions = {}): Promise<RunningSystem> {
  const env: Record<string, string> = { ...Deno.env.toObject(), ...options.env };
  const stack = options.stack ?? new StopStack();
  try {
    return await startWith(env, options, stack);
  } catch (error) {
    await stack.stopAll();
    throw error;
  }
}

async function startWith(
  env: Record<string, string>,
  options: SystemOptions,
  stack: StopStack,
): Promise<RunningSystem> {
  const config = readConfig(env);
  ensurePortFree(config.host, config.port, "PORT");
  const database = await provideDatabase(env, config, stack);
  if (database) env.DATABASE_URL = database.url;
  const nats = await provideNats(env, config, stack);
  if (nats) env.NATS_URL = nats.url;
  const brought = [database, nats].filter((backend): backend is Backend => !!backend);
  const checked = readConfig(env);
  const defaults = ["DATABASE_URL", "NATS_URL"].filter((name) => !env[name]);
  await checkBackends(env, checked, defaults);
  if (!env.JWT_SECRET) {
    console.warn("JWT_SECRET is not set: using a random one, so tokens die with this start");
    env.JWT_SECRET = randomSecret();
  }
  const services = startProcesses(env, options);
  stack.push(services.stop);
  const url = `http://${checked.host}:${checked.port}`;
  await waitHealthy(url, options.timeoutMs ?? 90_000, services.exited);
  // Only now: a process that fails during start-up (a bad setting) would fail again and again.
  if (options.restart) services.supervise();
  return {
    url,
    env,
    exited: services.exited,
    brought: brought.map((backend) => backend.label),
    stop: () => stack.stopAll(),
  };
}

/**
 * How `deno task start` restarts a process that exits once the system is ready: after 1 s, then
 * twice as long after each exit up to 30 s; back to 1 s once a process ran for 60 s. A lost
 * process makes its routes answer 503 at once (the gateway finds no instance) until it is back.
 */
const RESTART_BACKOFF = { firstMs: 1_000, maxMs: 30_000, stableMs: 60_000 };

/** One process `deno task start` keeps running: what it runs and the child running it now. */
interface Slot {
  name: string;
  script: string;
  proc: ReturnType<typeof spawn>;
}

function startProcesses(env: Record<string, string>, options: SystemOptions) {
  const output = options.output ?? true;
  const slots: Slot[] = [];
  const add = (name: string, script: string) =>
    slots.push({ name, script, proc: spawn(name, script, env, output) });
  for (const name of serviceNames) {
    for (let i = 0; i < (options.instances?.[name] ?? 1); i++) {
      add(name, `services/${name}/main.ts`);
    }
  }
  add("gateway", "gateway/main.ts");

  const halt = new AbortController();
  let restarting = false;
  const { promise: exited, resolve: reportExit } = Promise.withResolvers<string>();
  const watch = async (slot: Slot) => {
    for (let delay = RESTART_BACKOFF.firstMs;; delay = nextDelay(delay)) {
      const since = Date.now();
      const { code, signal } = await slot.proc.child.status;
      await slot.proc.child.stdin.close().catch(() => {});
      if (halt.signal.aborted) return;
      const how = `exit ${signal ?? code}`;
      if (!restarting) {
        const last = slot.proc.lastLines.join(" | ") || "no output";
        return reportExit(output ? slot.name : `${slot.name} (${how}: ${last})`);
      }
      if (Date.now() - since >= RESTART_BACKOFF.stableMs) delay = RESTART_BACKOFF.firstMs;
      console.error(
        `${slot.name} exited unexpectedly (${how}); restarting it in ${delay / 1000} s`,
      );
      if (!await pause(delay, halt.signal)) return;
      slot.proc = spawn(slot.name, slot.script, env, output);
      console.error(`${slot.name} restarted (pid ${slot.proc.child.pid})`);
    }
  };
  for (const slot of slots) void watch(slot);

  const stop = async () => {
    halt.abort();
    const children = () => slots.map((slot) => slot.proc.child);
    signalAll(children(), "SIGTERM");
    const killer = setTimeout(() => signalAll(children(), "SIGKILL"), 10_000);
    await Promise.all(children().map((child) => child.status));
    clearTimeout(killer);
    await Promise.all(children().map((child) => child.stdin.close().catch(() => {})));
  };
  /** From now on a process that exits is restarted (RESTART_BACKOFF) instead of reported. */
  const supervise = () => restarting = true;
  return { exited, stop, supervise };
}

function nextDelay(delay: number): number {
  return Math.min(delay * 2, RESTART_BACKOFF.maxMs);
}

/** Waits `ms`; false when `signal` aborted it first. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(true), ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve(false);
    }, { once: true });
  });
}

function signalAll(children: Deno.ChildProcess[], signal: Deno.Signal): void {
  for (const child of children) {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** Ends `deno task start` after a failure: one line for what the user can fix, else the error. */
function fail(error: unknown): never {
  const line = error instanceof StartError ? error.message : userCausedLine(error);
  if (line) exitWithError(line);
  throw error;
}

if (import.meta.main) {
  const stack = new StopStack();
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log("Stopping...");
    await stack.stopAll();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void shutdown());
  Deno.addSignalListener("SIGTERM", () => void shutdown());
  // A process that dies once the system is ready is restarted (its routes answer 503 meanwhile);
  // one that dies during start-up stops everything with exit code 1 (fail).
  const system = await startSystem({ stack, restart: true }).catch(fail);
  for (const label of system.brought) console.log(`Using ${label}`);
  console.log(`Open Event API ready at ${system.url}/v1 (health: ${system.url}/health)`);
}
