/**
 * The catalog service as a unit: migrate, serve every endpoint, publish facts, stop cleanly.
 * `main.ts` calls it with real configuration; tests and benchmarks call it with their own.
 */
import type { Bus, RunningService } from "@shared/bus.ts";
import type { Config } from "@shared/config.ts";
import type { Sql } from "@shared/db.ts";
import { type FactRelay, migrateWithOutbox, startFactRelay } from "@shared/facts.ts";
import type { Logger } from "@shared/log.ts";
import type { CatalogContext } from "./context.ts";
import { eventRoutes } from "./handlers/events.ts";
import { internalRoutes } from "./handlers/internal.ts";
import { resolveRoutes } from "./handlers/resolve.ts";
import { roleRoutes } from "./handlers/roles.ts";
import { ticketRoutes } from "./handlers/tickets.ts";
import { topicRoutes } from "./handlers/topics.ts";
import { userRoutes } from "./handlers/users.ts";
import { followStripeLinks } from "./stripe_links.ts";
import { withIdempotency } from "@shared/idempotency.ts";
import { catalog } from "@shared/subjects.ts";

export const SCHEMA = "catalog";
export const VERSION = "1.0.0";

export async function migrateCatalog(sql: Sql): Promise<string[]> {
  return await migrateWithOutbox(sql, {
    schema: SCHEMA,
    dir: new URL("./migrations/", import.meta.url),
  });
}

export interface CatalogService {
  relay: FactRelay;
  running: RunningService;
  /** Stops taking requests, finishes those in flight, publishes pending facts. */
  stop(): Promise<void>;
}

/** Serves the catalog on `bus`; the database must be migrated (see `migrateCatalog`). */
export async function startCatalog(
  options: { sql: Sql; bus: Bus; config: Config & { jwtSecret: string }; log: Logger },
): Promise<CatalogService> {
  const { sql, bus, config, log } = options;
  const relay = await startFactRelay(sql, bus, log);
  const ctx: CatalogContext = { sql, relay, config, log };
  const stripeLinks = await followStripeLinks(sql, bus, log);
  const running = bus.serve(
    { name: "catalog", version: VERSION, description: "Users, roles, events, topics, tickets" },
    withIdempotency(sql, [
      ...userRoutes(ctx),
      ...roleRoutes(ctx),
      ...eventRoutes(ctx),
      ...topicRoutes(ctx),
      ...ticketRoutes(ctx),
      ...resolveRoutes(ctx),
      ...internalRoutes(ctx),
    ], { carrySecrets: [catalog.login, catalog.users.create, catalog.users.update] }),
  );
  return {
    relay,
    running,
    async stop() {
      await running.stop();
      await stripeLinks.stop();
      await relay.stop();
    },
  };
}
