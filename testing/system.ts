/**
 * A whole system in one test process: a fresh database, a unique bus prefix, the catalog service
 * (migrated, with its first admin) and the gateway app on that bus, composed from the fixtures of
 * fixtures.ts. Tests talk to it through `call`, exactly as a client would, and read the database
 * or the fact stream to check what happened behind the API. Other services' tests start their
 * service on `system.bus` / `system.config` and register its shutdown with `defer`.
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
import type { Hono } from "hono";
import type { Bus } from "@shared/bus.ts";
import type { Config } from "@shared/config.ts";
import type { Sql } from "@shared/db.ts";
import type { LogLevel } from "@shared/log.ts";
import { testDatabase } from "@shared/testing.ts";
import type { GatewayEnv } from "../gateway/env.ts";
import type { CatalogService } from "../services/catalog/service.ts";
import * as actions from "./actions.ts";
import type {
  CreatedEvent,
  EventCast,
  EventRoleName,
  NewEventOptions,
  RoleGrant,
  TestUser,
} from "./actions.ts";
import type { Call } from "./call.ts";
import { readFacts, type TestFact } from "./facts.ts";
import { factBus } from "./fact_bus.ts";
import { catalogFixture, gatewayFixture, randomSecret, testConfig } from "./fixtures.ts";

// What tests used to import from here before the kit was split: still one import away.
export { caller, expectError, expectStatus, JSONAPI } from "./call.ts";
export { actorOf, inTopic } from "./actions.ts";
export type { CallOptions, CallResult } from "./call.ts";
export type { CreatedEvent, EventCast, EventRoleName, NewEventOptions, TestFact, TestUser };

/** The id of `userId`'s role grant on `eventId`, read from the catalog's table. */
export async function grantOf(
  system: TestSystem,
  userId: string,
  eventId: string,
): Promise<string> {
  const [{ id }] = await system.sql`select id from users_events_roles
    where user_id = ${userId} and event_id = ${eventId}`;
  return String(id);
}

export interface TestSystemOptions {
  /** Extra environment for `loadConfig` (overrides the test defaults). */
  env?: Record<string, string>;
  /** Log level of the catalog and the gateway (default "error": 500s still show up). */
  logLevel?: LogLevel;
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
  call: Call;
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
  grantRole(token: string, grant: RoleGrant): Promise<string>;
  /**
   * An event owned by a new user, with a new organizer, co-organizer and an unrelated user:
   * the people every permission matrix needs.
   */
  eventWithCast(options?: NewEventOptions): Promise<EventCast>;
  /** Registers clean-up that runs (last registered first) before the catalog stops. */
  defer(cleanup: () => PromiseLike<void> | void): void;
  stop(): Promise<void>;
}

/** The running parts a `TestSystem` is a view of. */
type Parts = Pick<TestSystem, "app" | "bus" | "sql" | "databaseUrl" | "prefix" | "config"> & {
  catalog: CatalogService;
  call: Call;
  admin: TestUser;
  /** Owns everything started; disposing it stops the system. */
  stack: AsyncDisposableStack;
};

/** The system's API: its parts, and the test actions bound to its `call` and admin. */
function systemOf(parts: Parts): TestSystem {
  const { call, admin, sql, stack } = parts;
  const stop = () => stack.disposeAsync();
  return {
    app: parts.app,
    bus: parts.bus,
    sql,
    databaseUrl: parts.databaseUrl,
    prefix: parts.prefix,
    config: parts.config,
    catalog: parts.catalog,
    admin,
    call,
    login: (email, password) => actions.logIn(call, email, password),
    signUp: (email) => actions.signUp(call, email),
    createEvent: (token, options) => actions.createEvent(call, token, options),
    createTicket: (token, eventId, attributes) =>
      actions.createTicket(call, token, { eventId, attributes }),
    createTopic: (name) => actions.createTopic(call, admin.token, name),
    createSubTopic: (topicId, name) => actions.createSubTopic(call, admin.token, { topicId, name }),
    grantRole: (token, grant) => actions.grantRole(call, token, grant),
    eventWithCast: (options) => actions.eventWithCast(call, sql, options),
    readFacts: async () => {
      await parts.catalog.relay.flush();
      return await readFacts(parts.bus);
    },
    // A failing clean-up must not keep the rest of the system running.
    defer: (cleanup) => stack.defer(() => Promise.resolve(cleanup()).catch(() => {})),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

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
  await using stack = new AsyncDisposableStack();
  const logLevel = options.logLevel ?? "error";
  const database = stack.use(await testDatabase());
  const bus = stack.use(await factBus());
  const admin = {
    email: `admin-${crypto.randomUUID().slice(0, 8)}@example.test`,
    password: randomSecret(),
  };
  const config = testConfig({ databaseUrl: database.url, bus, admin, logLevel, env: options.env });
  const context = { databaseUrl: database.url, bus: bus.bus, config, logLevel };
  const catalog = stack.use(await catalogFixture(context));
  const { app, call } = gatewayFixture(context);
  const [adminRow] = await catalog.sql`select id from users where email = ${admin.email}`;
  const token = await actions.logIn(call, admin.email, admin.password);
  return systemOf({
    app,
    bus: bus.bus,
    sql: catalog.sql,
    databaseUrl: database.url,
    prefix: bus.prefix,
    config,
    catalog: catalog.service,
    call,
    admin: { id: String(adminRow.id), ...admin, token },
    stack: stack.move(),
  });
}
