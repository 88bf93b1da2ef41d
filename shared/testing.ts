/**
 * Test set-up against the real Postgres and NATS. Every call makes uniquely named resources
 * (a database, a bus prefix) that `await using` removes again.
 *
 * Where they come from: `DATABASE_URL` / `NATS_URL` when given; otherwise containers started with
 * testcontainers when a Docker engine answers; otherwise the machine's own services on
 * 127.0.0.1. If none answers, the set-up stops with a message that says what to start.
 *
 * @example
 * ```ts
 * import { testDatabase, testBus } from "@shared/testing.ts";
 * Deno.test("[demo] a database and a bus of our own", async () => {
 *   await using db = await testDatabase();
 *   await using bus = await testBus();
 *   console.log(db.url, bus.prefix);
 * });
 * ```
 */
import postgres from "postgres";
import { hostAndPort, hostsOf, withDatabase } from "./postgres_url.ts";
import { Bus } from "./bus.ts";
import { createLogger, type LogFields, type Logger } from "./log.ts";
import { deleteFactStream } from "./fact_streams.ts";

interface Backends {
  databaseUrl: string;
  natsUrl: string;
}

let backends: Promise<Backends> | undefined;

function uniqueName(kind: string): string {
  return `${kind}_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`;
}

async function reachable(host: string, port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: host, port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** True when a Docker engine answers (testcontainers can start containers). */
export async function dockerAvailable(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("docker", {
      args: ["info"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return success;
  } catch {
    return false;
  }
}

async function startContainers(): Promise<Backends> {
  // Loaded only here: most runs never need it.
  const { GenericContainer, Wait } = await import("testcontainers");
  const pg = await new GenericContainer("postgres:15")
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: "trust" })
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
    .start();
  const nats = await startNatsContainer();
  return {
    databaseUrl: `postgres://postgres@${pg.getHost()}:${pg.getMappedPort(5432)}/postgres`,
    natsUrl: nats.url,
  };
}

/** A NATS with JetStream in a container (also `deno task start`'s fallback without nats-server). */
export async function startNatsContainer(): Promise<{ url: string; stop(): Promise<void> }> {
  const { GenericContainer } = await import("testcontainers");
  const nats = await new GenericContainer("nats:2.10").withCommand(["-js"]).withExposedPorts(4222)
    .start();
  return {
    url: `nats://${nats.getHost()}:${nats.getMappedPort(4222)}`,
    stop: async () => void await nats.stop(),
  };
}

async function findBackends(): Promise<Backends> {
  const env = Deno.env.toObject();
  if (!env.DATABASE_URL || !env.NATS_URL) {
    if (await dockerAvailable()) {
      const started = await startContainers();
      return {
        databaseUrl: env.DATABASE_URL || started.databaseUrl,
        natsUrl: env.NATS_URL || started.natsUrl,
      };
    }
  }
  const databaseUrl = env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
  const natsUrl = env.NATS_URL || "nats://127.0.0.1:4222";
  const db = hostsOf(databaseUrl)[0] ?? "127.0.0.1";
  const nats = new URL(natsUrl.replace(/^nats:/, "http:"));
  const missing: string[] = [];
  const { hostname, port } = hostAndPort(db);
  if (!await reachable(hostname, port)) {
    missing.push(`Postgres at ${db}`);
  }
  if (!await reachable(nats.hostname, Number(nats.port || 4222))) {
    missing.push(`NATS at ${nats.host}`);
  }
  if (missing.length) {
    throw new Error(
      `Cannot run the integration tests: ${missing.join(" and ")} did not answer. ` +
        "Start them (see README, 'Tests'), or set DATABASE_URL and NATS_URL, " +
        "or run a Docker engine so testcontainers can start them.",
    );
  }
  return { databaseUrl, natsUrl };
}

/** Where the test Postgres and NATS are (found once per test process). */
export function testBackends(): Promise<Backends> {
  backends ??= findBackends();
  return backends;
}

export interface TestDatabase extends AsyncDisposable {
  /** URL of a fresh, empty database of this test's own. */
  url: string;
  name: string;
}

/** A new empty database, dropped again on dispose. */
export async function testDatabase(): Promise<TestDatabase> {
  const { databaseUrl } = await testBackends();
  const name = uniqueName("test");
  const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await admin`create database ${admin(name)}`;
  await admin.end();
  return {
    url: withDatabase(databaseUrl, name),
    name,
    async [Symbol.asyncDispose]() {
      const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
      await sql`drop database if exists ${sql(name)} with (force)`;
      await sql.end();
    },
  };
}

export interface TestBus extends AsyncDisposable {
  bus: Bus;
  prefix: string;
  natsUrl: string;
}

/** A bus connection with a unique subject prefix, drained on dispose. */
export async function testBus(prefix = uniqueName("t")): Promise<TestBus> {
  const { natsUrl } = await testBackends();
  const bus = await Bus.connect({ url: natsUrl, prefix, logger: createLogger("test", "error") });
  return {
    bus,
    prefix,
    natsUrl,
    async [Symbol.asyncDispose]() {
      await bus.close();
    },
  };
}

/**
 * Deletes the fact stream of `prefix` on dispose: for tests whose own processes (a system started
 * as subprocesses) create it.
 */
export function factStreamRemoval(natsUrl: string, prefix: string): AsyncDisposable {
  return {
    async [Symbol.asyncDispose]() {
      const bus = await Bus.connect({
        url: natsUrl,
        prefix,
        logger: createLogger("test", "error"),
      });
      try {
        await deleteFactStream(bus);
      } finally {
        await bus.close();
      }
    },
  };
}

/** A line a `recordingLogger` kept: its level, its message and its fields. */
export type RecordedLine = LogFields & { level: string; message: string };

/**
 * A logger that keeps every line it is given, for tests that assert what a component logged (one
 * place instead of a logger per test file).
 */
export function recordingLogger(): Logger & { lines: RecordedLine[] } {
  const lines: RecordedLine[] = [];
  const keep = (level: string) => (message: string, fields?: LogFields) => {
    lines.push({ ...fields, level, message });
  };
  return {
    lines,
    debug: keep("debug"),
    info: keep("info"),
    warn: keep("warn"),
    error: keep("error"),
  };
}
