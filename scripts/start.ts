/**
 * Starts the whole system: every service and the gateway as separate processes sharing one
 * JWT secret, then waits until `/health` says every service answers on the bus. Ctrl-C (or
 * SIGTERM) stops them all cleanly: each drains its NATS connection and finishes in-flight work.
 *
 * Run: `deno task start`. Used as a library by the Dredd runner and the benchmark.
 */
import { serviceNames } from "@shared/subjects.ts";

export interface SystemOptions {
  /** Environment for every process, on top of this process's own. */
  env?: Record<string, string>;
  /** Instances per service (default 1 each). */
  instances?: Record<string, number>;
  /** Prefix each child's output lines with its name (default true); false discards it. */
  output?: boolean;
  /** How long to wait for `/health` (default 90 s: the first start may download packages). */
  timeoutMs?: number;
}

export interface RunningSystem {
  url: string;
  env: Record<string, string>;
  /** Resolves with a process's name if one exits before `stop()` was called. */
  exited: Promise<string>;
  stop(): Promise<void>;
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
    args: ["run", "-A", "--no-prompt", script],
    cwd: root,
    env,
    stdin: "null",
    stdout: output ? "piped" : "null",
    stderr: output ? "piped" : "null",
  }).spawn();
  if (output) {
    pipeLines(child.stdout, name, "out").catch(() => {});
    pipeLines(child.stderr, name, "err").catch(() => {});
  }
  return { name, child };
}

async function waitHealthy(url: string, timeoutMs: number, exited: Promise<string>) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  let failed: string | undefined;
  exited.then((name) => failed = name);
  while (Date.now() < deadline) {
    if (failed) throw new Error(`Cannot start the system: ${failed} exited during start-up`);
    try {
      const response = await fetch(`${url}/health`);
      last = await response.text();
      if (response.status === 200) return;
    } catch {
      // The gateway is not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`Cannot start the system: /health did not turn healthy (${last})`);
}

export async function startSystem(options: SystemOptions = {}): Promise<RunningSystem> {
  const env: Record<string, string> = { ...Deno.env.toObject(), ...options.env };
  if (!env.JWT_SECRET) {
    console.warn("JWT_SECRET is not set: using a random one, so tokens die with this start");
    env.JWT_SECRET = randomSecret();
  }
  const output = options.output ?? true;
  const children: ReturnType<typeof spawn>[] = [];
  for (const name of serviceNames) {
    for (let i = 0; i < (options.instances?.[name] ?? 1); i++) {
      children.push(spawn(name, `services/${name}/main.ts`, env, output));
    }
  }
  children.push(spawn("gateway", "gateway/main.ts", env, output));
  const url = `http://${env.HOST || "127.0.0.1"}:${env.PORT || "8080"}`;

  let stopping = false;
  const exited = Promise.race(
    children.map(({ name, child }) => child.status.then(() => name)),
  ).then((name) => stopping ? new Promise<string>(() => {}) : name);

  const stop = async () => {
    stopping = true;
    for (const { child } of children) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
    const killer = setTimeout(() => {
      for (const { child } of children) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }, 10_000);
    await Promise.all(children.map(({ child }) => child.status));
    clearTimeout(killer);
  };

  try {
    await waitHealthy(url, options.timeoutMs ?? 90_000, exited);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, env, exited, stop };
}

if (import.meta.main) {
  const system = await startSystem();
  console.log(`Open Event API ready at ${system.url}/v1 (health: ${system.url}/health)`);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log("Stopping...");
    await system.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  // A process that dies leaves a system that only half works: say so and stop it all.
  system.exited.then(async (name) => {
    if (stopping) return;
    stopping = true;
    console.error(`${name} exited unexpectedly; stopping the system`);
    await system.stop();
    Deno.exit(1);
  });
}
