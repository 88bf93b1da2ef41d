/**
 * What every catalog handler works with: the database, the fact relay, configuration, and the
 * caller's identity and event roles, always read fresh (a revoked role or admin flag counts on
 * the very next request).
 */
import type { Bus } from "@shared/bus.ts";
import type { Sql } from "@shared/db.ts";
import type { FactRelay } from "@shared/fact_relay.ts";
import type { FactActor } from "@shared/facts.ts";
import type { Config } from "@shared/config.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";
import { ForbiddenError, UnauthorizedError } from "@shared/errors.ts";
import { isAdmin, requireLogin } from "@shared/handlers/mod.ts";
import { type Caller, findCaller, rolesOnEvent } from "./store/users.ts";

export type { Caller };

export interface CatalogContext {
  sql: Sql;
  /** For what only other services can check (their fieldsets before a write). */
  bus: Bus;
  relay: FactRelay;
  config: Config & { jwtSecret: string };
  log: Logger;
}

export type EventRole = "owner" | "organizer" | "coorganizer";

/** Access levels of api-surface §2: organizer = owner|organizer, co-organizer adds coorganizer. */
export const levels = {
  organizer: ["owner", "organizer"] as EventRole[],
  coorganizer: ["owner", "organizer", "coorganizer"] as EventRole[],
};

/**
 * The caller behind a token; a token of a deleted user, or one issued before the user's password
 * last changed (an older `tokenVersion`), is refused.
 */
export async function loadCaller(sql: Sql, actor: Actor | null): Promise<Caller | null> {
  if (!actor) return null;
  return knownCaller(await findCaller(sql, actor));
}

/** The caller a token names, found (by `loadCaller` or with a read): 401 when there is none. */
export function knownCaller(caller: Caller | null | undefined): Caller {
  if (!caller) {
    throw new UnauthorizedError(
      "Cannot authenticate: the token's user does not exist, or changed their password since",
    );
  }
  return caller;
}

/** True when the caller is admin or holds one of `roles` on the event. */
export async function hasEventLevel(
  sql: Sql,
  caller: Caller | null,
  eventId: string,
  roles: EventRole[],
): Promise<boolean> {
  if (!caller) return false;
  if (isAdmin(caller)) return true;
  const held = await rolesOnEvent(sql, caller.id, eventId);
  return held.some((role) => roles.includes(role as EventRole));
}

export async function requireEventLevel(
  sql: Sql,
  caller: Caller | null,
  eventId: string,
  level: keyof typeof levels,
): Promise<Caller> {
  const known = requireLogin(caller);
  if (!await hasEventLevel(sql, known, eventId, levels[level])) {
    const who = level === "organizer" ? "organizers" : "co-organizers";
    throw new ForbiddenError(`Cannot continue: only the event's ${who} may do this`);
  }
  return known;
}

export function factActor(caller: Caller | null): FactActor {
  return caller ? { id: caller.id, email: caller.email } : null;
}
