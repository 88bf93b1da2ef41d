/**
 * What every discounts handler works with, and the permission rule of api-surface §4 the handler
 * kit does not know: co-organizers (admins and logins are the kit's checks). Who the caller is
 * and their roles on an event come from the catalog's answers as `ctx.access` keeps them
 * (shared/access_source.ts: a revoked role counts once its fact arrives, at most its age limit
 * later; ACCESS_CACHE_TTL_MS=0 asks the catalog on every request).
 */
import type { Bus } from "@shared/bus.ts";
import type { Sql } from "@shared/db.ts";
import type { Access, ManyAccess } from "@shared/access.ts";
import type { FactRelay } from "@shared/fact_relay.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";
import type { AccessSource } from "@shared/access_source.ts";

export interface DiscountsContext {
  sql: Sql;
  bus: Bus;
  relay: FactRelay;
  log: Logger;
  /** Who callers are and their roles, as the catalog answers (kept; see the file comment). */
  access: AccessSource;
}

export type { Access, Caller, EventAccess } from "@shared/access.ts";
export { factActor, isCoorganizer, requireCoorganizer } from "@shared/access.ts";

/** The caller and, when `event` is given, that event with the caller's roles. */
export function access(
  ctx: DiscountsContext,
  actor: Actor | null,
  event?: string | null,
): Promise<Access> {
  return ctx.access.ask(actor, event);
}

/** `access` for many events in one question to the catalog: for includes of many parents. */
export function accessMany(
  ctx: DiscountsContext,
  actor: Actor | null,
  events: readonly string[],
): Promise<ManyAccess> {
  return ctx.access.askMany(actor, events);
}
