/**
 * What a benchmark run needs around the measurement: unique names and free ports, real data
 * created through the API, a process of our own, and clean-up of the database and the fact
 * stream afterwards.
 */
import { databaseOf, withDatabase } from "@shared/postgres_url.ts";
import { freePort } from "@shared/net.ts";
import { Hono } from "hono";
import { toErrorObjects } from "@shared/errors.ts";
import postgres from "postgres";
import { Bus } from "@shared/bus.ts";
import { deleteFactStream } from "@shared/fact_streams.ts";
import { denoRunArgs, launchEnv } from "../scripts/launch.ts";

const JSONAPI = "application/vnd.api+json";

/** Eight random hex characters, for names no other run uses. */
function uniqueSuffix(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/** One API call of the seeding; anything but 2xx stops the benchmark. */
export async function api(
  url: string,
  init: { method?: string; token?: string; body?: unknown; type?: string } = {},
): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { Accept: JSONAPI };
  if (init.token) headers.Authorization = `JWT ${init.token}`;
  if (init.body !== undefined) headers["Content-Type"] = init.type ?? JSONAPI;
  const response = await fetch(url, {
    method: init.method ?? "GET",
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`Cannot seed: ${init.method ?? "GET"} ${url} answered ${response.status}`);
  }
  return text ? JSON.parse(text) : {};
}

/** A JSON:API document that creates a resource of `type`. */
export function resourceBody(
  type: string,
  attributes: Record<string, unknown>,
  extra: object = {},
) {
  return { data: { type, attributes, ...extra } };
}

/** The admin, logged in through the API, creating resources for a benchmark's fixtures. */
export interface AdminSession {
  token: string;
  /** POSTs `payload` to `path`; returns the created resource. */
  create(
    path: string,
    payload: object,
  ): Promise<{ id: string; attributes: Record<string, string> }>;
}

export async function adminSession(
  baseUrl: string,
  admin: { email: string; password: string },
): Promise<AdminSession> {
  const login = await api(`${baseUrl}/v1/auth/login`, {
    method: "POST",
    body: admin,
    type: "application/json",
  });
  const token = String(login.access_token);
  return {
    token,
    create: async (path, payload) =>
      (await api(`${baseUrl}${path}`, { method: "POST", token, body: payload })).data as {
        id: string;
        attributes: Record<string, string>;
      },
  };
}

export interface Seeded {
  topicIds: string[];
  eventId: string;
}

/** Logs in as the admin and creates `topics` event topics and one published event. */
export async function seed(
  baseUrl: string,
  admin: { email: string; password: string },
  options: { topics: number },
): Promise<Seeded> {
  const { create } = await adminSession(baseUrl, admin);
  const topicIds: string[] = [];
  for (let i = 1; i <= options.topics; i++) {
    const topic = await create(
      "/v1/event-topics",
      resourceBody("event-topic", {
        name: `Bench topic ${i}`,
        "system-image-url": `https://example.com/${i}.png`,
      }),
    );
    topicIds.push(topic.id);
  }
  const event = await create(
    "/v1/events",
    resourceBody("event", {
      name: "Bench conference",
      description: "A published event the benchmark reads back.",
      "location-name": "Singapore",
      "starts-at": "2030-03-01T09:00:00+08:00",
      "ends-at": "2030-03-03T18:00:00+08:00",
      timezone: "Asia/Singapore",
      state: "published",
    }, { relationships: { "event-topic": { data: { type: "event-topic", id: topicIds[0] } } } }),
  );
  return { topicIds, eventId: event.id };
}

/** Waits until `url` answers 200, or throws after `timeoutMs`. */
export async function waitForOk(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Cannot start the benchmark: ${url} did not answer 200 in time`);
}

/**
 * A child Deno process running `script` with `env` (its output discarded unless asked), launched
 * as `deno task start` launches it (scripts/launch.ts: the gateway's V8 flags and malloc settings).
 */
export function spawnDeno(
  script: string,
  env: Record<string, string>,
  options: { output?: boolean } = {},
): Deno.ChildProcess {
  const io = options.output ? "inherit" : "null";
  return new Deno.Command(Deno.execPath(), {
    args: denoRunArgs(script),
    cwd: new URL("../", import.meta.url),
    env: { ...launchEnv(script), ...env },
    stdin: "null",
    stdout: io,
    stderr: io,
  }).spawn();
}

/** Asks a child to stop, and kills it if it has not gone after `graceMs`. */
export async function stopChild(child: Deno.ChildProcess, graceMs = 10_000): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, graceMs);
  await child.status;
  clearTimeout(timer);
}

/** Drops the database named in `url`, closing whatever connections are left on it. */
export async function dropDatabase(url: string): Promise<void> {
  const name = databaseOf(url);
  const sql = postgres(withDatabase(url, "postgres"), { max: 1, onnotice: () => {} });
  try {
    await sql`drop database if exists ${sql(name)} with (force)`;
  } finally {
    await sql.end();
  }
}

/** Deletes the JetStream stream that holds the facts of bus prefix `prefix`. */
export async function dropFactStream(natsUrl: string, prefix: string): Promise<void> {
  const bus = await Bus.connect({ url: natsUrl, prefix, name: "bench-cleanup" });
  try {
    await deleteFactStream(bus);
  } finally {
    await bus.close();
  }
}

/** Where one benchmark run lives: its own database, bus prefix, ports and first admin. */
export interface BenchSettings {
  suffix: string;
  databaseUrl: string;
  natsUrl: string;
  prefix: string;
  admin: { email: string; password: string };
  gatewayPort: number;
  baselinePort: number;
  /** The environment of every process of the system under test. */
  env: Record<string, string>;
}

export function benchSettings(label: string): BenchSettings {
  const suffix = uniqueSuffix();
  const databaseUrl = withDatabase(
    Deno.env.get("DATABASE_URL") || "postgres://postgres@127.0.0.1:5432/postgres",
    `oe_bench_${label}${suffix}`,
  );
  const natsUrl = Deno.env.get("NATS_URL") || "nats://127.0.0.1:4222";
  const prefix = `bench_${label}${suffix}`;
  const admin = { email: "bench-admin@example.com", password: `bench-${suffix}-password` };
  const gatewayPort = freePort();
  return {
    suffix,
    databaseUrl,
    natsUrl,
    prefix,
    admin,
    gatewayPort,
    baselinePort: freePort(),
    env: {
      // Every service falls back to DATABASE_URL (one schema each).
      DATABASE_URL: databaseUrl,
      NATS_URL: natsUrl,
      BUS_PREFIX: prefix,
      HOST: "127.0.0.1",
      PORT: String(gatewayPort),
      JWT_SECRET: crypto.randomUUID() + crypto.randomUUID(),
      ADMIN_EMAIL: admin.email,
      ADMIN_PASSWORD: admin.password,
      PASSWORD_ITERATIONS: "1000",
      LOG_LEVEL: "error",
    },
  };
}

/** A JSON:API response, as the gateway sends it. */
export function jsonApiResponse(body: object, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": JSONAPI },
  });
}

/** A Hono app for a baseline: errors rendered as JSON:API documents, as the gateway does. */
export function baselineApp(): Hono {
  const app = new Hono();
  app.onError((error) => {
    const objects = toErrorObjects(error);
    return jsonApiResponse(
      { errors: objects, jsonapi: { version: "1.0" } },
      Number(objects[0].status),
    );
  });
  return app;
}
