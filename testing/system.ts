/**
 * A whole system in one test process: a fresh database, a unique bus prefix, the catalog service
 * (migrated, with its first admin) and the gateway app on that bus. Tests talk to it through
 * `call`, exactly as a client would, and read the database or the fact stream to check what
 * happened behind the API. Other services' tests start their service on `system.bus` /
 * `system.config` and register its shutdown with `defer`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startTestSystem } from "@testing/system.ts";
 * Deno.test("[catalog] POST /v1/events makes the creator the owner", async () => {
 *   await using system = await startTestSystem();
 *   const alice = await system.signUp();
 *   const created = await system.call("POST", "/v1/events", {
 *     token: alice.token,
 *     body: { data: { type: "event", attributes: {
 *       name: "Demo", "starts-at": "2030-01-01T10:00:00Z", "ends-at": "2030-01-01T12:00:00Z",
 *     } } },
 *   });
 *   assert.equal(created.status, 201);
 * });
 * ```
 */
import type { JsonBody } from "./json.ts";
import type { Hono } from "hono";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Bus } from "@shared/bus.ts";
import { type Config, loadConfig } from "@shared/config.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import { deleteFactStream, type Fact, parseFact } from "@shared/facts.ts";
import { createLogger, type LogLevel } from "@shared/log.ts";
import { facts } from "@shared/subjects.ts";
import { testBus, testDatabase } from "@shared/testing.ts";
import { createApp } from "../gateway/app.ts";
import { assertJsonApi, isJsonApiMediaType } from "./jsonapi_validity.ts";
import type { GatewayEnv } from "../gateway/env.ts";
import { ensureFirstAdmin } from "../services/catalog/admin.ts";
import {
  type CatalogService,
  migrateCatalog,
  SCHEMA,
  startCatalog,
} from "../services/catalog/service.ts";

export const JSONAPI = "application/vnd.api+json";

/** A fact as tests read it: typed, with `data` open to any key (tests look up fields freely). */
export type TestFact = Fact & { data: Record<string, JsonBody> };

export interface TestSystemOptions {
  /** Extra environment for `loadConfig` (overrides the test defaults). */
  env?: Record<string, string>;
  /** Log level of the catalog and the gateway (default "error": 500s still show up). */
  logLevel?: LogLevel;
  /** Services `/health` expects (default: the gateway's own default). */
  services?: readonly string[];
}

export interface CallOptions {
  /** Sent as `Authorization: JWT <token>`. */
  token?: string;
  /** An object is sent as JSON; a string is sent as is (for malformed bodies). */
  body?: unknown;
  /** Extra or overriding headers (e.g. another `Content-Type`). */
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or null when the body is empty or not JSON. */
  body: JsonBody;
  /** The raw body text (for "never contains X" checks). */
  text: string;
}

export interface TestUser {
  id: string;
  token: string;
  email: string;
  password: string;
}

export interface TestSystem extends AsyncDisposable {
  app: Hono<GatewayEnv>;
  bus: Bus;
  /** A pool on the catalog's schema of the test database. */
  sql: Sql;
  /** URL of the test database (other services open their own schema in it). */
  databaseUrl: string;
  prefix: string;
  config: Config & { jwtSecret: string };
  catalog: CatalogService;
  /** The super admin made from ADMIN_EMAIL / ADMIN_PASSWORD. */
  admin: TestUser;
  /** Signs a new user up through the API and logs them in. */
  signUp(email?: string): Promise<TestUser>;
  /** Logs in through the API; returns the token. */
  login(email: string, password: string): Promise<string>;
  /** One request through the gateway app. */
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
  /**
   * Every fact published on this system's stream so far (pending ones are flushed first), each
   * checked against its registered schema (an invalid one fails the test).
   */
  readFacts(): Promise<TestFact[]>;
  /** Creates an event through the API as `token`'s user (the owner); throws unless 201. */
  createEvent(token: string, options?: NewEventOptions): Promise<CreatedEvent>;
  /** Creates a ticket for `eventId` through the API; throws unless 201. Returns its id. */
  createTicket(
    token: string,
    eventId: string,
    attributes?: Record<string, unknown>,
  ): Promise<string>;
  /** Creates an event topic as the admin; throws unless 201. Returns its id. */
  createTopic(name?: string): Promise<string>;
  /** Creates an event sub-topic of `topicId` as the admin; throws unless 201. Returns its id. */
  createSubTopic(topicId: string, name?: string): Promise<string>;
  /** Grants `role` on an event through the API as `token`'s user; throws unless 201. */
  grantRole(
    token: string,
    grant: { userId: string; eventId: string; role: EventRoleName },
  ): Promise<string>;
  /**
   * An event owned by a new user, with a new organizer, co-organizer and an unrelated user:
   * the people every permission matrix needs.
   */
  eventWithCast(options?: NewEventOptions): Promise<EventCast>;
  /** Registers clean-up that runs (last registered first) before the catalog stops. */
  defer(cleanup: () => Promise<void> | void): void;
  stop(): Promise<void>;
}

export type EventRoleName = "owner" | "organizer" | "coorganizer";

export interface NewEventOptions {
  /** Attributes over the defaults (a draft tomorrow, two hours long). */
  attributes?: Record<string, unknown>;
  /** JSON:API relationships object, e.g. `{ "event-topic": { data: {...} } }`. */
  relationships?: Record<string, unknown>;
}

export interface CreatedEvent {
  id: string;
  identifier: string;
  /** The whole resource object as the API returned it. */
  resource: JsonBody;
}

export interface EventCast {
  event: CreatedEvent;
  owner: TestUser;
  organizer: TestUser;
  coorganizer: TestUser;
  /** Logged in, but without any role on the event. */
  stranger: TestUser;
  /** Grant ids by role name (the owner's grant is made by the server). */
  grants: Record<EventRoleName, string>;
}

function randomSecret(): string {
  return crypto.randomUUID() + crypto.randomUUID();
}

/** Makes a `call` function for a Hono app (also handy for gateway-only tests). */
export function caller(app: Hono<GatewayEnv>) {
  return async function call(
    method: string,
    path: string,
    options: CallOptions = {},
  ): Promise<CallResult> {
    const headers: Record<string, string> = {};
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["Content-Type"] = JSONAPI;
    }
    if (options.token) headers["Authorization"] = `JWT ${options.token}`;
    Object.assign(headers, options.headers);
    const response = await app.request(path, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    // Every JSON:API body a test sees must be valid JSON:API 1.0 with full linkage.
    if (parsed !== null && isJsonApiMediaType(response.headers.get("Content-Type"))) {
      assertJsonApi(parsed, `${method} ${path}`);
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  };
}

type Call = ReturnType<typeof caller>;

async function loginWith(call: Call, email: string, password: string): Promise<string> {
  const reply = await call("POST", "/v1/auth/login", {
    body: { email, password },
    headers: { "Content-Type": "application/json" },
  });
  if (reply.status !== 200) {
    throw new Error(`Cannot log in as ${email}: ${reply.status} ${reply.text}`);
  }
  return reply.body.access_token;
}

async function grantWith(
  call: Call,
  token: string,
  grant: { userId: string; eventId: string; role: EventRoleName },
): Promise<string> {
  const reply = await call("POST", "/v1/users-events-roles", {
    token,
    body: {
      data: {
        type: "users-events-role",
        relationships: {
          user: { data: { type: "user", id: grant.userId } },
          event: { data: { type: "event", id: grant.eventId } },
          role: { data: { type: "role", id: grant.role } },
        },
      },
    },
  });
  if (reply.status !== 201) throw new Error(`Cannot grant a role: ${reply.status} ${reply.text}`);
  return reply.body.data.id;
}

let counter = 0;

/**
 * Starts the system; `await using` stops it and removes its database and stream again.
 *
 * @example
 * ```ts
 * import { startTestSystem } from "@testing/system.ts";
 * await using system = await startTestSystem({ env: { REQUEST_TIMEOUT_MS: "3000" } });
 * const me = await system.call("GET", `/v1/users/${system.admin.id}`, {
 *   token: system.admin.token,
 * });
 * console.log(me.body.data.attributes.email);
 * ```
 */
export async function startTestSystem(options: TestSystemOptions = {}): Promise<TestSystem> {
  const database = await testDatabase();
  const testbus = await testBus();
  const cleanups: (() => Promise<void> | void)[] = [];
  let sql: Sql | undefined;
  let catalog: CatalogService | undefined;
  const logLevel = options.logLevel ?? "error";
  const adminEmail = `admin-${crypto.randomUUID().slice(0, 8)}@example.test`;
  const adminPassword = randomSecret();

  async function stop() {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await Promise.resolve(cleanup()).catch(() => {});
    }
    await catalog?.stop();
    catalog = undefined;
    await deleteFactStream(testbus.bus);
    await testbus[Symbol.asyncDispose]();
    await sql?.end({ timeout: 5 });
    sql = undefined;
    await database[Symbol.asyncDispose]();
  }

  try {
    const loaded = loadConfig({
      DATABASE_URL: database.url,
      BUS_PREFIX: testbus.prefix,
      NATS_URL: testbus.natsUrl,
      PASSWORD_ITERATIONS: "1000",
      JWT_SECRET: randomSecret(),
      ADMIN_EMAIL: adminEmail,
      ADMIN_PASSWORD: adminPassword,
      REQUEST_TIMEOUT_MS: "5000",
      LOG_LEVEL: logLevel,
      ...options.env,
    });
    const config = { ...loaded, jwtSecret: loaded.jwtSecret ?? randomSecret() };
    sql = await openDatabase(database.url, { schema: SCHEMA, max: 5 });
    await migrateCatalog(sql);
    const log = createLogger("catalog", logLevel);
    catalog = await startCatalog({ sql, bus: testbus.bus, config, log });
    await ensureFirstAdmin({ sql, relay: catalog.relay, config, log });
    // A round trip so the server has the catalog's subscriptions before the first request.
    await testbus.bus.nc.flush();
    const app = createApp({
      bus: testbus.bus,
      config,
      logger: createLogger("gateway", logLevel),
      services: options.services,
    });
    const call = caller(app);
    const db = sql;

    const login = (email: string, password: string) => loginWith(call, email, password);
    const grantRole: TestSystem["grantRole"] = (token, grant) => grantWith(call, token, grant);

    const [adminRow] = await db`select id from users where email = ${adminEmail}`;
    const admin: TestUser = {
      id: String(adminRow.id),
      email: adminEmail,
      password: adminPassword,
      token: await login(adminEmail, adminPassword),
    };
    const running = catalog;

    const system: TestSystem = {
      app,
      bus: testbus.bus,
      sql: db,
      databaseUrl: database.url,
      prefix: testbus.prefix,
      config,
      catalog: running,
      admin,
      login,
      call,
      async signUp(email?: string) {
        const address = email ??
          `user-${++counter}-${crypto.randomUUID().slice(0, 8)}@example.test`;
        const password = `pw-${crypto.randomUUID()}`;
        const reply = await call("POST", "/v1/users", {
          body: { data: { type: "user", attributes: { email: address, password } } },
        });
        if (reply.status !== 201) {
          throw new Error(`Cannot sign up ${address}: ${reply.status} ${reply.text}`);
        }
        return {
          id: reply.body.data.id,
          email: address,
          password,
          token: await login(address, password),
        };
      },
      async createEvent(token, eventOptions = {}) {
        const starts = new Date(Date.now() + 24 * 3600_000);
        const ends = new Date(starts.getTime() + 2 * 3600_000);
        const data: Record<string, unknown> = {
          type: "event",
          attributes: {
            name: `Event ${++counter}`,
            "starts-at": starts.toISOString(),
            "ends-at": ends.toISOString(),
            ...eventOptions.attributes,
          },
        };
        if (eventOptions.relationships) data.relationships = eventOptions.relationships;
        const reply = await call("POST", "/v1/events", { token, body: { data } });
        if (reply.status !== 201) {
          throw new Error(`Cannot create event: ${reply.status} ${reply.text}`);
        }
        const resource = reply.body.data;
        return { id: resource.id, identifier: resource.attributes.identifier, resource };
      },
      async createTicket(token, eventId, attributes = {}) {
        const reply = await call("POST", "/v1/tickets", {
          token,
          body: {
            data: {
              type: "ticket",
              attributes: { name: `Ticket ${++counter}`, type: "paid", price: 10, ...attributes },
              relationships: { event: { data: { type: "event", id: eventId } } },
            },
          },
        });
        if (reply.status !== 201) {
          throw new Error(`Cannot create ticket: ${reply.status} ${reply.text}`);
        }
        return reply.body.data.id;
      },
      async createTopic(name) {
        const reply = await call("POST", "/v1/event-topics", {
          token: admin.token,
          body: {
            data: { type: "event-topic", attributes: { name: name ?? `Topic ${++counter}` } },
          },
        });
        if (reply.status !== 201) {
          throw new Error(`Cannot create topic: ${reply.status} ${reply.text}`);
        }
        return reply.body.data.id;
      },
      async createSubTopic(topicId, name) {
        const reply = await call("POST", "/v1/event-sub-topics", {
          token: admin.token,
          body: {
            data: {
              type: "event-sub-topic",
              attributes: { name: name ?? `Sub-topic ${++counter}` },
              relationships: { "event-topic": { data: { type: "event-topic", id: topicId } } },
            },
          },
        });
        if (reply.status !== 201) {
          throw new Error(`Cannot create sub-topic: ${reply.status} ${reply.text}`);
        }
        return reply.body.data.id;
      },
      grantRole,
      async eventWithCast(eventOptions) {
        const [owner, organizer, coorganizer, stranger] = await Promise.all(
          [0, 1, 2, 3].map(() => system.signUp()),
        );
        const event = await system.createEvent(owner.token, eventOptions);
        const [ownerGrant] = await db`select id from users_events_roles
          where event_id = ${event.id} and role_name = 'owner'`;
        const grants = {
          owner: String(ownerGrant.id),
          organizer: await grantRole(owner.token, {
            userId: organizer.id,
            eventId: event.id,
            role: "organizer",
          }),
          coorganizer: await grantRole(owner.token, {
            userId: coorganizer.id,
            eventId: event.id,
            role: "coorganizer",
          }),
        };
        return { event, owner, organizer, coorganizer, stranger, grants };
      },
      async readFacts() {
        await running.relay.flush();
        const jsm = await jetstreamManager(testbus.bus.nc);
        const stream = facts.stream(testbus.prefix);
        const { state } = await jsm.streams.info(stream);
        const out: TestFact[] = [];
        for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
          const message = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
          if (!message) continue;
          const read = parseFact(message.json());
          if (!("fact" in read)) throw new Error(`Fact ${seq} breaks its contract: ${read.reason}`);
          out.push(read.fact);
        }
        return out;
      },
      defer(cleanup) {
        cleanups.push(cleanup);
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
    return system;
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/**
 * Asserts the status of a call, showing the request's answer when it differs.
 *
 * @example
 * ```ts ignore
 * expectStatus(await system.call("GET", "/v1/events"), 200);
 * ```
 */
export function expectStatus(result: CallResult, status: number, what = ""): void {
  if (result.status !== status) {
    throw new Error(
      `Expected ${status}, got ${result.status}${what ? ` (${what})` : ""}: ${
        result.text.slice(0, 600)
      }`,
    );
  }
}

/**
 * Asserts a JSON:API error answer: its status, media type, and where its first error points.
 *
 * @example
 * ```ts ignore
 * expectError(reply, 422, { pointer: "/data/attributes/ends-at" });
 * ```
 */
export function expectError(
  result: CallResult,
  status: number,
  source: { pointer?: string; parameter?: string; header?: string } = {},
  what = "",
): void {
  expectStatus(result, status, what);
  const type = result.headers.get("Content-Type");
  if (type !== JSONAPI) throw new Error(`Expected a JSON:API error document, got ${type}`);
  const first = result.body?.errors?.[0];
  if (!first || first.status !== String(status)) {
    throw new Error(`Expected an errors array with status ${status}: ${result.text}`);
  }
  if (result.body.jsonapi?.version !== "1.0") throw new Error(`No jsonapi member: ${result.text}`);
  for (const [key, value] of Object.entries(source)) {
    if (first.source?.[key] !== value) {
      throw new Error(
        `Expected source.${key} ${JSON.stringify(value)}${
          what ? ` (${what})` : ""
        }: ${result.text}`,
      );
    }
  }
}
