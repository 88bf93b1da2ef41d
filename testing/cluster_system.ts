/**
 * The catalog, audit and the gateway as real processes on a private three-node NATS cluster
 * (FACTS_REPLICAS=3, NATS_URL listing every node) and a test database: the set-up of the fault
 * tests that take NATS nodes away. Everything is removed again on dispose.
 */
import { freePort } from "@shared/net.ts";
import { Bus } from "@shared/bus.ts";
import { createLogger } from "@shared/log.ts";
import { facts } from "@shared/subjects.ts";
import { testDatabase } from "@shared/testing.ts";
import { storedMessages } from "./facts.ts";
import { type NatsCluster, startNatsCluster, waitForJetStream } from "./nats_cluster.ts";
import { spawnProcess, type TestProcess } from "./processes.ts";

export interface StoredFact {
  id: string;
  subject: string;
  storedAt: Date;
}

export interface ClusterSystem extends AsyncDisposable {
  cluster: NatsCluster;
  /** The test's own connection to the cluster, on the system's prefix. */
  bus: Bus;
  databaseUrl: string;
  gatewayUrl: string;
  adminToken: string;
  processes: Record<"catalog" | "audit" | "gateway", TestProcess>;
  /** The fact stream's name. */
  stream: string;
  /**
   * Every message in the fact stream: its id (the fact's id, as the relay publishes it), its
   * subject and when JetStream stored it. Read without decoding the fact itself.
   */
  storedFacts(): Promise<StoredFact[]>;
}

async function login(
  url: string,
  admin: { email: string; password: string },
  processes: TestProcess[],
): Promise<string> {
  const { email, password } = admin;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reply = await fetch(`${url}/v1/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password }),
    }).catch(() => undefined);
    const body = await reply?.json().catch(() => undefined);
    if (reply?.status === 200) return body.access_token;
    if (Date.now() > deadline) {
      throw new Error(
        `Cannot log in: ${reply?.status} ${JSON.stringify(body)}; ${lastWords(processes)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** What each process logged last, for a failure message that says why it did not come up. */
function lastWords(processes: TestProcess[]): string {
  return processes.map((p) =>
    `${p.name}: ${JSON.stringify(p.logs.slice(-4).map((line) => line.message))}`
  ).join("; ");
}

async function readStoredFacts(bus: Bus, stream: string): Promise<StoredFact[]> {
  return (await storedMessages(bus, stream)).map((message) => ({
    id: message.header?.get("Nats-Msg-Id") ?? "",
    subject: message.subject,
    storedAt: message.time,
  }));
}

/** The environment every process of the cluster system reads. */
function clusterEnv(options: {
  databaseUrl: string;
  natsUrl: string;
  prefix: string;
  port: number;
  admin: { email: string; password: string };
}): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    DATABASE_URL: options.databaseUrl,
    NATS_URL: options.natsUrl,
    BUS_PREFIX: options.prefix,
    FACTS_REPLICAS: "3",
    JWT_SECRET: crypto.randomUUID(),
    ADMIN_EMAIL: options.admin.email,
    ADMIN_PASSWORD: options.admin.password,
    PASSWORD_ITERATIONS: "1000",
    PORT: String(options.port),
    LOG_LEVEL: "info",
  };
}

export async function startClusterSystem(): Promise<ClusterSystem> {
  await using stack = new AsyncDisposableStack();
  // A clean-up that fails must not keep the rest (a cluster, a database) alive.
  const owns = (disposable: AsyncDisposable) =>
    stack.defer(() => Promise.resolve(disposable[Symbol.asyncDispose]()).catch(() => {}));
  const cluster = await startNatsCluster(3);
  owns(cluster);
  const database = await testDatabase();
  owns(database);
  const prefix = `c${crypto.randomUUID().slice(0, 8)}`;
  const bus = await Bus.connect({
    url: cluster.natsUrl,
    prefix,
    factsReplicas: 3,
    logger: createLogger("test", "error"),
  });
  stack.defer(() => bus.nc.close().catch(() => {}));
  await waitForJetStream(bus);
  const port = freePort();
  const admin = { email: "admin@example.test", password: crypto.randomUUID() };
  const env = clusterEnv({
    databaseUrl: database.url,
    natsUrl: cluster.natsUrl,
    prefix,
    port,
    admin,
  });
  const processes = {
    catalog: spawnProcess("catalog", "services/catalog/main.ts", env),
    audit: spawnProcess("audit", "services/audit/main.ts", env),
    gateway: spawnProcess("gateway", "gateway/main.ts", env),
  };
  Object.values(processes).forEach(owns);
  const gatewayUrl = `http://127.0.0.1:${port}`;
  const adminToken = await login(gatewayUrl, admin, Object.values(processes));
  await processes.audit.waitForLog((line) => line.message === "audit ready", 30_000);
  const stream = facts.stream(prefix);
  const owned = stack.move();
  return {
    cluster,
    bus,
    databaseUrl: database.url,
    gatewayUrl,
    adminToken,
    processes,
    stream,
    storedFacts: () => readStoredFacts(bus, stream),
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}
