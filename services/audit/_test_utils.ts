/**
 * Test helpers for the audit service: start it on a test database and bus (or next to a
 * `startTestSystem()`), make facts, publish them, wait for activities.
 */
import { jetstream } from "@nats-io/jetstream";
import type { Bus } from "@shared/bus.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import type { Fact } from "@shared/facts.ts";
import { createLogger } from "@shared/log.ts";
import { facts } from "@shared/subjects.ts";
import { type AuditService, migrateAudit, SCHEMA, startAudit } from "./service.ts";

export const quiet = createLogger("audit-test", "error");

export interface RunningAudit {
  service: AuditService;
  /** A pool of its own on the audit schema (for checks), separate from the service's. */
  sql: Sql;
  stop(): Promise<void>;
}

/** Migrates the audit schema of `databaseUrl` and starts the service with its own pool. */
export async function startAuditOn(
  bus: Bus,
  databaseUrl: string,
  options: { batchSize?: number; ackWaitMs?: number; sql?: Sql } = {},
): Promise<RunningAudit> {
  const sql = options.sql ?? await openDatabase(databaseUrl, { schema: SCHEMA, max: 4 });
  await migrateAudit(sql);
  const service = await startAudit({ sql, bus, log: quiet, ...options });
  let stopped = false;
  return {
    service,
    sql,
    async stop() {
      if (stopped) return;
      stopped = true;
      await service.stop();
      await sql.end({ timeout: 5 });
    },
  };
}

let counter = 0;

/** A valid fact (an event topic created by user 1), with any part overridden. */
export function makeFact(overrides: Partial<Fact> = {}): Fact {
  const type = overrides.type ?? "event-topic";
  const verb = overrides.verb ?? "created";
  const service = overrides.service ?? "catalog";
  return {
    id: crypto.randomUUID(),
    subject: facts.subject(service, type, verb),
    service,
    type,
    verb,
    occurredAt: new Date().toISOString(),
    actor: { id: "1", email: "admin@example.com" },
    resource: { type, id: String(++counter) },
    data: { name: `Topic ${counter}` },
    ...overrides,
  };
}

/** Publishes facts on their own subjects, many in flight at once, each with its id as msgID. */
export async function publishFacts(bus: Bus, list: Fact[]): Promise<void> {
  const js = jetstream(bus.nc);
  for (let i = 0; i < list.length; i += 1000) {
    await Promise.all(
      list.slice(i, i + 1000).map((fact) =>
        js.publish(bus.subject(fact.subject), JSON.stringify(fact), { msgID: fact.id })
      ),
    );
  }
}

/** Waits until `check` holds (polling), or fails after `ms`. */
export async function until(
  check: () => Promise<boolean> | boolean,
  ms = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`Cannot wait longer: ${what} not met in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export async function activityCount(sql: Sql): Promise<number> {
  const [{ count }] = await sql`select count(*)::int as count from activities`;
  return count;
}
