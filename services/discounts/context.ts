/**
 * What every discounts handler works with, and the permission rules of api-surface §4. Who the
 * caller is and their roles on an event come from the catalog on every request (no cache: a
 * revoked role counts on the very next request).
 */
import type { Bus } from "@shared/bus.ts";
import type { Sql } from "@shared/db.ts";
import { ForbiddenError, UnauthorizedError } from "@shared/errors.ts";
import type { FactActor, FactRelay } from "@shared/facts.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";
import { type callerSchema, catalogInternal, type eventAccessSchema } from "@shared/subjects.ts";
import type { z } from "zod";

export interface DiscountsContext {
  sql: Sql;
  bus: Bus;
  relay: FactRelay;
  log: Logger;
}

export type Caller = z.infer<typeof callerSchema>;
export type EventAccess = z.infer<typeof eventAccessSchema>;
export interface Access {
  caller: Caller | null;
  event: EventAccess | null;
}

/** An event key the catalog can look up: a bigint id or an 8-hex identifier. */
export function isEventKey(key: string | undefined | null): key is string {
  return !!key && (/^[1-9]\d{0,17}$/.test(key) || /^[0-9a-f]{8}$/.test(key));
}

/** The caller and, when `event` is given, that event with the caller's roles (fresh). */
export async function access(
  ctx: DiscountsContext,
  actor: Actor | null,
  event?: string | null,
): Promise<Access> {
  if (event !== undefined && event !== null && !isEventKey(event)) {
    return { ...(await access(ctx, actor)), event: null };
  }
  return await ctx.bus.request(catalogInternal.access, {
    actor,
    ...(event ? { event } : {}),
  });
}

export function isAdmin(caller: Caller | null): boolean {
  return !!caller && (caller.isAdmin || caller.isSuperAdmin);
}

export function requireLogin(caller: Caller | null): Caller {
  if (!caller) throw new UnauthorizedError("Cannot continue: log in first");
  return caller;
}

export function requireAdmin(caller: Caller | null, what = "do this"): Caller {
  const known = requireLogin(caller);
  if (!isAdmin(known)) throw new ForbiddenError(`Cannot ${what}: only admins may`);
  return known;
}

/** Admins, and owners, organizers and co-organizers of this very event. */
export function isCoorganizer(caller: Caller | null, event: EventAccess | null): boolean {
  if (isAdmin(caller)) return true;
  return !!caller && !!event && event.roles.length > 0;
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

export function factActor(caller: Caller | null): FactActor {
  return caller ? { id: caller.id, email: caller.email } : null;
}
