/**
 * The payments service as a unit: migrate, serve every endpoint, publish facts, stop cleanly.
 * `main.ts` calls it with real configuration; tests call it with their own (and a fake Stripe).
 */
import type { Bus, RunningService } from "@shared/bus.ts";
import { serveContract } from "@shared/serve_contract.ts";
import type { Config } from "@shared/config.ts";
import { companionClient, type Sql } from "@shared/db.ts";
import { migrateWithOutbox } from "@shared/facts.ts";
import { type FactRelay, startFactRelay } from "@shared/fact_relay.ts";
import type { AnnouncedIds } from "@shared/announced_ids.ts";
import type { Logger } from "@shared/log.ts";
import { followCatalogFacts } from "./follow_catalog.ts";
import { createBackground, type PaymentsContext } from "./context.ts";
import { createSecretBox } from "./crypto.ts";
import { paymentsHandlers } from "./handlers/mod.ts";
import { releaseQueued, stopReleaseRetries } from "./handlers/accounts.ts";
import { paymentsContract } from "@shared/contracts/mod.ts";
import { authenticateWith, startAccessSource } from "@shared/access_source.ts";

export const SCHEMA = "payments";
const VERSION = "1.0.0";

/** The tables whose ids payments' `created` facts announce: never handed out again. */
export const ANNOUNCED_IDS: AnnouncedIds[] = [
  { table: "stripe_authorizations", created: "payments.stripe-authorization.created" },
];

/** How often the queued Stripe account releases that are due are tried (handlers/accounts.ts). */
const RELEASE_RETRY_MS = 30_000;

export async function migratePayments(sql: Sql): Promise<string[]> {
  return await migrateWithOutbox(sql, {
    schema: SCHEMA,
    dir: new URL("./migrations/", import.meta.url),
  });
}

export interface PaymentsService {
  relay: FactRelay;
  running: RunningService;
  /** What the handlers and the catalog consumer work with (tests call them directly). */
  context: PaymentsContext;
  /** Resolves when the work started after replies (account releases) is done. */
  idle(): Promise<void>;
  /**
   * Stops taking requests and catalog facts, finishes those in hand and the background work,
   * publishes pending facts.
   */
  stop(): Promise<void>;
}

/**
 * The connection a link queues its exchanged account's release on (handlers/accounts.ts), opened
 * now and kept: opened by the first link after a quiet minute, it was a connection to make after
 * Stripe had spent the code, outside the lock's time budget, and one Postgres at its
 * `max_connections` could refuse (a review, 2026-12-05).
 */
async function openOwnConnection(sql: Sql): Promise<Sql> {
  const own = companionClient(sql, "releases", { idleTimeout: 0 });
  if (!own) return sql;
  await own`select 1`;
  return own;
}

/**
 * Runs release passes at start and every RELEASE_RETRY_MS: releases queued before a restart (or by
 * an instance that died), and those that failed, are tried again from here.
 */
function startReleasing(ctx: PaymentsContext): { stop(): void } {
  const timer = setInterval(
    () => ctx.background.run(() => releaseQueued(ctx)),
    RELEASE_RETRY_MS,
  );
  ctx.background.run(() => releaseQueued(ctx));
  return {
    stop() {
      clearInterval(timer);
      stopReleaseRetries(ctx);
    },
  };
}

/**
 * Serves payments on `bus`; the database must be migrated (see `migratePayments`). Throws when
 * PAYMENTS_ENCRYPTION_KEY is set but malformed; unset Stripe settings only make the routes that
 * need them answer 503, so the rest of the system still starts without Stripe.
 */
export async function startPayments(
  options: { sql: Sql; bus: Bus; config: Config; log: Logger },
): Promise<PaymentsService> {
  const { sql, bus, config, log } = options;
  const box = config.paymentsEncryptionKey
    ? await createSecretBox(config.paymentsEncryptionKey)
    : null;
  const relay = await startFactRelay(sql, bus, log, ANNOUNCED_IDS);
  const background = createBackground(log);
  const access = await startAccessSource(bus, { ttlMs: config.accessCacheTtlMs, log });
  const ownConnection = await openOwnConnection(sql);
  const ctx: PaymentsContext = {
    sql,
    ownConnection,
    bus,
    relay,
    config,
    log,
    box,
    background,
    access,
  };
  const running = serveContract({
    bus,
    sql,
    contract: paymentsContract,
    handlers: paymentsHandlers(ctx),
    version: VERSION,
    authenticate: authenticateWith(access),
    // Links carry Stripe authorization codes: a keyed request's row holds no plain hash of one.
    requestDigest: box ? (text) => box.digest(text) : undefined,
  });
  const catalogFacts = await followCatalogFacts(ctx, bus).catch(async (error) => {
    await running.stop();
    access.stop();
    await relay.stop();
    if (ownConnection !== sql) await ownConnection.end({ timeout: 5 });
    throw error;
  });
  const releasing = startReleasing(ctx);
  return {
    relay,
    running,
    context: ctx,
    idle: () => background.idle(),
    async stop() {
      await running.stop();
      access.stop();
      await catalogFacts.stop();
      releasing.stop();
      await background.idle();
      await relay.stop();
      if (ownConnection !== sql) await ownConnection.end({ timeout: 5 });
    },
  };
}
