/**
 * Test helpers for the audit service: start it on a test database and bus (or next to a
 * `startTestSystem()`), make facts, publish them, wait for activities.
 */
import type { Bus } from "@shared/bus.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import type { FactData, FactType } from "@shared/fact_catalog.ts";
import type { Fact, FactActor } from "@shared/facts.ts";
import { createLogger } from "@shared/log.ts";
import { exampleFact, publishFacts } from "@testing/facts.ts";
import { type AuditService, migrateAudit, SCHEMA, startAudit } from "./service.ts";

export const quiet = createLogger("audit-test", "error");

/** The audit service and its pool; `stop` (or disposing it) stops both, once. */
export interface RunningAudit extends AsyncDisposable {
  service: AuditService;
  /** A pool of its own on the audit schema (for checks), separate from the service's. */
  sql: Sql;
  stop(): Promise<void>;
}

/** Migrates the audit schema of `databaseUrl` and starts the service with its own pool. */
export async function startAuditOn(
  bus: Bus,
  databaseUrl: string,
  options: { batchSize?: number; sql?: Sql; unpagedMax?: number } = {},
): Promise<RunningAudit> {
  const sql = options.sql ?? await openDatabase(databaseUrl, { schema: SCHEMA, max: 4 });
  await migrateAudit(sql);
  const service = await startAudit({ sql, bus, log: quiet, ...options });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await service.stop();
    await sql.end({ timeout: 5 });
  };
  return { service, sql, stop, [Symbol.asyncDispose]: stop };
}

let counter = 0;

/**
 * A valid fact (by default an event topic created by user 1, a new id each time): the registry's
 * example of `type` with `data` laid over it.
 */
export function makeFact<K extends FactType = "catalog.event-topic.created">(
  type: K = "catalog.event-topic.created" as K,
  data: Partial<FactData<K>> = {},
  options: { actor?: FactActor; time?: Date } = {},
): Fact<K> {
  const id = String(++counter);
  return exampleFact(type, { id, name: `Topic ${id}`, ...data } as Partial<FactData<K>>, {
    actor: options.actor === undefined ? { id: "1", email: "admin@example.com" } : options.actor,
    time: options.time,
  });
}

export { publishFacts };

export async function activityCount(sql: Sql): Promise<number> {
  const [{ count }] = await sql`select count(*)::int as count from activities`;
  return count;
}
