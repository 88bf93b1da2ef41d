/**
 * The pieces a test system is made of, each one fixture that disposes what it made: the
 * configuration the processes would read, the catalog service on its schema of a test database,
 * and the gateway app (with a fact bus of fact_bus.ts and a test database of shared/testing.ts).
 * `startTestSystem` composes them; a test that needs less takes only the pieces it needs.
 *
 * @example
 * ```ts ignore
 * await using database = await testDatabase();
 * await using bus = await factBus();
 * const logLevel = "error";
 * const config = testConfig({ databaseUrl: database.url, bus, admin, logLevel });
 * const context = { databaseUrl: database.url, bus: bus.bus, config, logLevel };
 * await using catalog = await catalogFixture(context);
 * const { call } = gatewayFixture(context);
 * ```
 */
import type { Hono } from "hono";
import type { Bus } from "@shared/bus.ts";
import { type Config, loadConfig } from "@shared/config.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import { createLogger, type LogLevel } from "@shared/log.ts";
import type { TestBus } from "@shared/testing.ts";
import { createApp } from "../gateway/app.ts";
import type { GatewayEnv } from "../gateway/env.ts";
import { ensureFirstAdmin } from "../services/catalog/admin.ts";
import {
  type CatalogService,
  migrateCatalog,
  SCHEMA,
  startCatalog,
} from "../services/catalog/service.ts";
import { type Call, caller } from "./call.ts";

/** A secret nobody guesses: for JWT_SECRET and passwords. */
export function randomSecret(): string {
  return crypto.randomUUID() + crypto.randomUUID();
}

export interface TestConfigOptions {
  databaseUrl: string;
  bus: TestBus;
  /** The first admin the catalog makes. */
  admin: { email: string; password: string };
  logLevel: LogLevel;
  /** Extra environment for `loadConfig` (overrides the test defaults). */
  env?: Record<string, string>;
}

/** The configuration of a test system: cheap password hashes, a random JWT secret. */
export function testConfig(options: TestConfigOptions): Config & { jwtSecret: string } {
  const loaded = loadConfig({
    DATABASE_URL: options.databaseUrl,
    BUS_PREFIX: options.bus.prefix,
    NATS_URL: options.bus.natsUrl,
    PASSWORD_ITERATIONS: "1000",
    JWT_SECRET: randomSecret(),
    ADMIN_EMAIL: options.admin.email,
    ADMIN_PASSWORD: options.admin.password,
    REQUEST_TIMEOUT_MS: "5000",
    LOG_LEVEL: options.logLevel,
    ...options.env,
  });
  return { ...loaded, jwtSecret: loaded.jwtSecret ?? randomSecret() };
}

export interface ServiceContext {
  databaseUrl: string;
  bus: Bus;
  config: Config & { jwtSecret: string };
  logLevel: LogLevel;
}

export interface CatalogFixture extends AsyncDisposable {
  /** A pool on the catalog's schema of the test database. */
  sql: Sql;
  service: CatalogService;
}

/**
 * The catalog on its schema of `databaseUrl`: migrated, serving on `bus`, its first admin made,
 * and its subscriptions known to the server. Dispose stops it and closes its pool.
 */
export async function catalogFixture(context: ServiceContext): Promise<CatalogFixture> {
  await using stack = new AsyncDisposableStack();
  const sql = await openDatabase(context.databaseUrl, { schema: SCHEMA, max: 5 });
  stack.defer(() => sql.end({ timeout: 5 }));
  await migrateCatalog(sql);
  const { bus, config } = context;
  const log = createLogger("catalog", context.logLevel);
  const service = await startCatalog({ sql, bus, config, log });
  stack.defer(() => service.stop());
  await ensureFirstAdmin({ sql, relay: service.relay, config, log });
  // A round trip so the server has the catalog's subscriptions before the first request.
  await bus.nc.flush();
  const owned = stack.move();
  return { sql, service, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

export interface GatewayFixture {
  app: Hono<GatewayEnv>;
  /** One request through `app`. */
  call: Call;
}

/** The gateway app in-process on `bus` (it holds nothing that needs stopping). */
export function gatewayFixture(context: Omit<ServiceContext, "databaseUrl">): GatewayFixture {
  const app = createApp({
    bus: context.bus,
    config: context.config,
    logger: createLogger("gateway", context.logLevel),
  });
  return { app, call: caller(app) };
}
