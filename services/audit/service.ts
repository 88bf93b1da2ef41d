/**
 * The audit service as a unit: migrate, consume every fact into activities, serve the log, stop
 * cleanly. `main.ts` calls it with real configuration; tests and benchmarks with their own.
 */
import type { Bus, RunningService } from "@shared/bus.ts";
import { serveContract } from "@shared/serve_contract.ts";
import { auditContract } from "@shared/contracts/mod.ts";
import type { FactConsumer } from "@shared/consumer.ts";
import { migrate, type Sql } from "@shared/db.ts";
import type { Logger } from "@shared/log.ts";
import type { AuditContext } from "./context.ts";
import { followAllFacts } from "./follow_all.ts";
import { activityHandlers } from "./handlers/activities.ts";
import { authenticateWith, startAccessSource } from "@shared/access_source.ts";

export { DURABLE } from "./follow_all.ts";

export const SCHEMA = "audit";
const VERSION = "1.0.0";

export function migrateAudit(sql: Sql): Promise<string[]> {
  return migrate(sql, { schema: SCHEMA, dir: new URL("./migrations/", import.meta.url) });
}

export interface AuditOptions {
  sql: Sql;
  bus: Bus;
  log: Logger;
  /** Facts per batch (default 1000: one insert each, well under Postgres' parameter limit). */
  batchSize?: number;
  /** Age limit of the catalog's access answers it keeps (default 5 s; 0 asks every time). */
  accessTtlMs?: number;
  /** Activities `page[size]=0` may list at most (default `UNPAGED_MAX`). */
  unpagedMax?: number;
}

export interface AuditService {
  running: RunningService;
  consumer: FactConsumer;
  /** Stops serving, finishes the batch in hand, stops consuming. */
  stop(): Promise<void>;
}

/** Serves the log on `bus` and turns facts into activities; the database must be migrated. */
export async function startAudit(options: AuditOptions): Promise<AuditService> {
  const { sql, bus, log } = options;
  const consumer = await followAllFacts(options);
  const access = await startAccessSource(bus, { ttlMs: options.accessTtlMs, log });
  const ctx: AuditContext = { sql, bus, log, access, unpagedMax: options.unpagedMax };
  const running = serveContract({
    bus,
    sql,
    contract: auditContract,
    handlers: activityHandlers(ctx),
    version: VERSION,
    authenticate: authenticateWith(access),
  });
  return {
    running,
    consumer,
    async stop() {
      await running.stop();
      access.stop();
      await consumer.stop();
    },
  };
}
