/**
 * Runs the HTTP contract (blueprint/*.apib) against a freshly started system with Dredd, then
 * removes everything the run made. Each run gets its own database, bus prefix, ports and JWT
 * secret, so runs never see each other (nor a developer's `deno task start`).
 *
 * Run: `deno task dredd` (extra arguments go to Dredd, e.g. `deno task dredd --names`).
 * Exits with Dredd's exit code.
 */
import { withDatabase } from "@shared/postgres_url.ts";
import { freePort } from "@shared/net.ts";
import { Bus } from "@shared/bus.ts";
import { deleteFactStream } from "@shared/fact_streams.ts";
import postgres from "postgres";
import { DOCUMENTATION_ONLY } from "../hooks/error_examples.ts";
import { startSystem } from "./start.ts";
import { serviceNames } from "@shared/contracts/mod.ts";

const BLUEPRINTS = ["blueprint/*.apib"];
/** Each service's fixtures (`hooks/<service>.ts`), then the checks every transaction gets. */
const HOOK_FILES = [
  ...serviceNames.map((name) => `hooks/${name}.ts`),
  "hooks/jsonapi_validity.ts",
  // The generated error examples (Dredd loads hook files in alphabetical order anyway).
  "hooks/errors.ts",
];
const DREDD = "npm:dredd@14.1.0";

const root = new URL("../", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function uniqueSuffix(): string {
  return `${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`;
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * startSystem can only print its children's output or discard it; we want it only when
 * something fails. So, while the system runs, whatever goes to this process's stdout/stderr is
 * kept here instead, and the runner writes its own output through `say`.
 */
class OutputCapture {
  readonly #lines: string[] = [];
  readonly #limit = 5000;
  readonly #restore: (() => void)[] = [];

  start(): void {
    for (const stream of [Deno.stdout, Deno.stderr]) {
      const original = stream.write;
      stream.write = (bytes: Uint8Array) => {
        this.#lines.push(...decoder.decode(bytes).split("\n").filter(Boolean));
        if (this.#lines.length > this.#limit) {
          this.#lines.splice(0, this.#lines.length - this.#limit);
        }
        return Promise.resolve(bytes.length);
      };
      this.#restore.push(() => stream.write = original);
    }
  }

  stop(): void {
    for (const restore of this.#restore.splice(0)) restore();
  }

  lines(filter?: (line: string) => boolean): string[] {
    return filter ? this.#lines.filter(filter) : [...this.#lines];
  }
}

const stdoutWrite = Deno.stdout.write.bind(Deno.stdout);
const stderrWrite = Deno.stderr.write.bind(Deno.stderr);

async function say(text: string, to: "out" | "err" = "out"): Promise<void> {
  const write = to === "out" ? stdoutWrite : stderrWrite;
  const bytes = encoder.encode(text.endsWith("\n") ? text : `${text}\n`);
  for (let done = 0; done < bytes.length;) done += await write(bytes.subarray(done));
}

async function pump(stream: ReadableStream<Uint8Array>, to: "out" | "err"): Promise<void> {
  const write = to === "out" ? stdoutWrite : stderrWrite;
  for await (const chunk of stream) {
    for (let done = 0; done < chunk.length;) done += await write(chunk.subarray(done));
  }
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`drop database if exists ${sql(name)} with (force)`;
  } finally {
    await sql.end();
  }
}

async function deleteStream(natsUrl: string, prefix: string): Promise<void> {
  const bus = await Bus.connect({ url: natsUrl, prefix, name: "dredd-cleanup" });
  try {
    await deleteFactStream(bus);
  } finally {
    await bus.close();
  }
}

async function runDredd(url: string, hooksPort: number, env: Record<string, string>) {
  const handler = `${Deno.execPath()} run -A hooks/handler.ts --port ${hooksPort}`;
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      DREDD,
      ...BLUEPRINTS,
      url,
      "--language",
      handler,
      ...HOOK_FILES.map((file) => `--hookfiles=${file}`),
      "--hooks-worker-handler-port",
      String(hooksPort),
      "--hooks-worker-connect-timeout",
      "10000",
      "--hooks-worker-timeout",
      "10000",
      ...Deno.args,
    ],
    cwd: root,
    // Dredd spawns the hooks handler, which inherits this: how the hooks find the database.
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  const stop = () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  };
  Deno.addSignalListener("SIGINT", stop);
  try {
    await Promise.all([pump(child.stdout, "out"), pump(child.stderr, "err")]);
    return (await child.status).code;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
  }
}

/** Error examples Dredd skips are named with their reason, so none is skipped silently. */
async function sayDocumentationOnly(): Promise<void> {
  const entries = Object.entries(DOCUMENTATION_ONLY);
  const lines = entries.map(([name, reason]) => `  ${name}: ${reason}`);
  await say([`${entries.length} documentation-only transactions (skipped):`, ...lines].join("\n"));
}

/** Where one run's system lives: its own database, bus prefix, port and secrets. */
interface DreddRun {
  baseUrl: string;
  natsUrl: string;
  dbName: string;
  busPrefix: string;
  env: Record<string, string>;
}

function newRun(): DreddRun {
  const baseUrl = Deno.env.get("DATABASE_URL") || "postgres://postgres@127.0.0.1:5432/postgres";
  const natsUrl = Deno.env.get("NATS_URL") || "nats://127.0.0.1:4222";
  const suffix = uniqueSuffix();
  const dbName = `oe_dredd_${suffix}`;
  const databaseUrl = withDatabase(baseUrl, dbName);
  const busPrefix = `dredd_${suffix}`;
  const port = freePort();
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    // A per-service URL in the caller's environment would send that service elsewhere.
    ...Object.fromEntries(
      serviceNames.map((name) => [`${name.toUpperCase()}_DATABASE_URL`, databaseUrl]),
    ),
    NATS_URL: natsUrl,
    BUS_PREFIX: busPrefix,
    HOST: "127.0.0.1",
    PORT: String(port),
    JWT_SECRET: randomSecret(),
    ADMIN_EMAIL: "dredd-admin@example.com",
    ADMIN_PASSWORD: randomSecret(),
    PASSWORD_ITERATIONS: "1000",
    // Payments talks to a fake Stripe that hooks/payments.ts starts on this port: never the
    // internet. The secrets are this run's own.
    STRIPE_CONNECT_URL: `http://127.0.0.1:${freePort()}`,
    STRIPE_SECRET_KEY: `sk_test_${randomSecret()}`,
    STRIPE_CLIENT_ID: "ca_dredd",
    STRIPE_WEBHOOK_SECRET: `whsec_${randomSecret()}`,
    PAYMENTS_ENCRYPTION_KEY: randomSecret(),
  };
  return { baseUrl, natsUrl, dbName, busPrefix, env };
}

/** Removes the run's database and fact stream; says what could not be removed. */
async function cleanUp(run: DreddRun): Promise<void> {
  const cleanup = await Promise.allSettled([
    dropDatabase(withDatabase(run.baseUrl, "postgres"), run.dbName),
    deleteStream(run.natsUrl, run.busPrefix),
  ]);
  for (const result of cleanup) {
    if (result.status === "rejected") {
      const reason = result.reason instanceof Error ? result.reason.message : result.reason;
      await say(`Cannot clean up after the Dredd run: ${reason}`, "err");
    }
  }
}

async function main(): Promise<number> {
  const run = newRun();
  const capture = new OutputCapture();
  const startedAt = performance.now();
  let system: Awaited<ReturnType<typeof startSystem>> | undefined;
  try {
    capture.start();
    try {
      system = await startSystem({ env: run.env, output: true, timeoutMs: 120_000 });
    } catch (error) {
      capture.stop();
      await say(capture.lines().join("\n"), "err");
      await say(error instanceof Error ? error.message : String(error), "err");
      return 1;
    }
    await say(`System up at ${system.url} (database ${run.dbName}, bus prefix ${run.busPrefix})`);
    await sayDocumentationOnly();
    const code = await runDredd(system.url, freePort(), { ...Deno.env.toObject(), ...run.env });
    if (code !== 0) {
      // Services log a failure's cause (a 500's error) only to their own output.
      const problems = capture.lines((line) => /"level":"(error|warn)"/.test(line)).slice(-100);
      if (problems.length) await say(`Service warnings and errors:\n${problems.join("\n")}`, "err");
    }
    return code;
  } finally {
    await system?.stop().catch(() => {});
    capture.stop();
    await cleanUp(run);
    const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
    await say(`Dredd run finished in ${seconds} s`);
  }
}

if (import.meta.main) Deno.exit(await main());
