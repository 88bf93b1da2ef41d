/**
 * The discounts service as a unit: migrate, serve every endpoint, follow the catalog's facts,
 * publish its own, stop cleanly. `main.ts` calls it with real configuration; tests and
 * benchmarks call it with their own.
 */
import type { Bus, RunningService } from "@shared/bus.ts";
import { serveContract } from "@shared/serve_contract.ts";
import type { Sql } from "@shared/db.ts";
import { migrateWithOutbox } from "@shared/facts.ts";
import { type FactRelay, startFactRelay } from "@shared/fact_relay.ts";
import type { AnnouncedIds } from "@shared/announced_ids.ts";
import type { Logger } from "@shared/log.ts";
import { followCatalogFacts } from "./follow_catalog.ts";
import type { DiscountsContext } from "./context.ts";
import { discountsHandlers } from "./handlers/mod.ts";
import { discountsContract } from "@shared/contracts/mod.ts";
import { type AccessSource, authenticateWith, startAccessSource } from "@shared/access_source.ts";

export const SCHEMA = "discounts";
const VERSION = "1.0.0";

/** The tables whose ids discounts' `created` facts announce: never handed out again. */
export const ANNOUNCED_IDS: AnnouncedIds[] = [
  { table: "discount_codes", created: "discounts.discount-code.created" },
];

export async function migrateDiscounts(sql: Sql): Promise<string[]> {
  return await migrateWithOutbox(sql, {
    schema: SCHEMA,
    dir: new URL("./migrations/", import.meta.url),
  });
}

export interface DiscountsService {
  relay: FactRelay;
  /** Where handlers learn who callers are (tests read its projection). */
  access: AccessSource;
  running: RunningService;
  /** Stops taking requests, finishes those in flight, publishes pending facts. */
  stop(): Promise<void>;
}

/**
 * Serves the discounts service on `bus`; the database must be migrated. `accessTtlMs` is the age
 * limit of the catalog's access answers it keeps (default 5 s; 0 asks on every request).
 */
export async function startDiscounts(
  options: { sql: Sql; bus: Bus; log: Logger; accessTtlMs?: number },
): Promise<DiscountsService> {
  const { sql, bus, log } = options;
  const relay = await startFactRelay(sql, bus, log, ANNOUNCED_IDS);
  const catalogFacts = await followCatalogFacts({ sql, bus, relay, log });
  const access = await startAccessSource(bus, { ttlMs: options.accessTtlMs, log });
  const ctx: DiscountsContext = { sql, bus, relay, log, access };
  const running = serveContract({
    bus,
    sql,
    contract: discountsContract,
    handlers: discountsHandlers(ctx),
    version: VERSION,
    authenticate: authenticateWith(access),
  });
  return {
    relay,
    running,
    access,
    async stop() {
      await running.stop();
      access.stop();
      await catalogFacts.stop();
      await relay.stop();
    },
  };
}
