/**
 * The catalog service as a unit: migrate, serve every endpoint, publish facts, stop cleanly.
 * `main.ts` calls it with real configuration; tests and benchmarks call it with their own.
 */
import type { Bus, RunningService } from "@shared/bus.ts";
import { JWT_SECRET_METADATA, secretFingerprint } from "@shared/secret_fingerprint.ts";
import { serveContract } from "@shared/serve_contract.ts";
import type { Config } from "@shared/config.ts";
import type { Sql } from "@shared/db.ts";
import { migrateWithOutbox } from "@shared/facts.ts";
import { type FactRelay, startFactRelay } from "@shared/fact_relay.ts";
import type { AnnouncedIds } from "@shared/announced_ids.ts";
import type { Logger } from "@shared/log.ts";
import { type CatalogContext, loadCaller } from "./context.ts";
import { catalogContract } from "@shared/contracts/mod.ts";
import { eventHandlers } from "./handlers/events.ts";
import { eventSubTopicHandlers } from "./handlers/event_sub_topics.ts";
import { eventTopicHandlers } from "./handlers/event_topics.ts";
import { eventTypeHandlers } from "./handlers/event_types.ts";
import { internalHandlers } from "./handlers/internal.ts";
import { resolveHandler } from "./handlers/resolve.ts";
import { roleHandlers } from "./handlers/roles.ts";
import { ticketHandlers } from "./handlers/tickets.ts";
import { authHandlers } from "./handlers/auth.ts";
import { userHandlers } from "./handlers/users.ts";
import { followPaymentsFacts } from "./follow_payments.ts";

export const SCHEMA = "catalog";
const VERSION = "1.0.0";

/** The catalog's tables whose ids its `created` facts announce: never handed out again. */
export const ANNOUNCED_IDS: AnnouncedIds[] = [
  { table: "users", created: "catalog.user.created" },
  { table: "users_events_roles", created: "catalog.users-events-role.created" },
  { table: "events", created: "catalog.event.created" },
  { table: "event_topics", created: "catalog.event-topic.created" },
  { table: "event_sub_topics", created: "catalog.event-sub-topic.created" },
  { table: "tickets", created: "catalog.ticket.created" },
];

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
  const relay = await startFactRelay(sql, bus, log, ANNOUNCED_IDS);
  const ctx: CatalogContext = { sql, bus, relay, config, log };
  const stripeLinks = await followPaymentsFacts(sql, relay, bus, log);
  const handlers = {
    ...authHandlers(ctx),
    ...userHandlers(ctx),
    ...roleHandlers(ctx),
    ...eventHandlers(ctx),
    ...eventTopicHandlers(ctx),
    ...eventSubTopicHandlers(ctx),
    ...eventTypeHandlers(ctx),
    ...ticketHandlers(ctx),
    resolve: resolveHandler(ctx),
    ...internalHandlers(ctx),
  };
  const running = serveContract({
    bus,
    sql,
    contract: catalogContract,
    handlers,
    version: VERSION,
    // So that a gateway verifying with another secret says so on /health.
    metadata: { [JWT_SECRET_METADATA]: secretFingerprint(config.jwtSecret) },
    // A deleted user's or outdated token: 401 before a stored answer is replayed.
    authenticate: async (actor) => {
      await loadCaller(sql, actor);
    },
  });
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
