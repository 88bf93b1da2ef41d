/**
 * What every discounts handler works with, and the permission rule of api-surface §4 the handler
 * kit does not know: co-organizers (admins and logins are the kit's checks). Who the caller is
 * and their roles on an event come from the catalog on every request (no cache: a revoked role
 * counts on the very next request).
 */
import type { Bus } from "@shared/bus.ts";
import type { Sql } from "@shared/db.ts";
import {
  type Access,
  askAccess,
  type Caller,
  type EventAccess,
  isCoorganizer,
} from "@shared/access.ts";
import { ForbiddenError } from "@shared/errors.ts";
import { requireLogin } from "@shared/handlers/mod.ts";
import type { FactRelay } from "@shared/facts.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";

export interface DiscountsContext {
  sql: Sql;
  bus: Bus;
  relay: FactRelay;
  log: Logger;
}

export type { Access, Caller, EventAccess } from "@shared/access.ts";
export { factActor, isCoorganizer } from "@shared/access.ts";

/** The caller and, when `event` is given, that event with the caller's roles (fresh). */
export function access(
  ctx: DiscountsContext,
  actor: Actor | null,
  event?: string | null,
): Promise<Access> {
  return askAccess(ctx.bus, actor, event);
}

export function requireCoorganizer(
  caller: Caller | null,
  event: EventAccess | null,
  what = "do this",
): Caller {
  const known = requireLogin(caller);
  if (!isCoorganizer(known, event)) {
    throw new ForbiddenError(`Cannot ${what}: only the event's co-organizers and admins may`);
  }
  return known;
}
