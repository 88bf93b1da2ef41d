/**
 * Who is asking, and what they are to an event, as services other than the catalog learn it: a
 * live question to `catalog.internal.access`, about one event or many at once. The level rules
 * are api-surface §2's.
 *
 * A handler reads the kept answers of its service's `AccessSource` (`ctx.access`,
 * shared/access_source.ts: a few seconds old at most, dropped by the catalog's facts), which is
 * right for deciding whether a request may begin. A write that must not outlive a revocation or
 * a deletion committed meanwhile asks again here, live, inside its transaction, after locking
 * what it depends on (discounts' `checkStillNamed`, payments' `requireEventStillLive`): a kept
 * answer may predate a revocation by its age.
 *
 * @example
 * ```ts ignore
 * const { caller, event } = await askAccess(bus, req.actor, req.params.id);
 * if (!isCoorganizer(caller, event)) throw new ForbiddenError("Cannot continue: ...");
 * ```
 */
import { isId } from "./schemas/ids.ts";
import type { z } from "zod";
import type { Bus } from "./bus.ts";
import { isAdmin, requireLogin } from "./handlers/guards.ts";
import { ForbiddenError } from "./errors.ts";
import type { FactActor } from "./facts.ts";
import type { Actor } from "./schemas/http.ts";
import { ACCESS_EVENTS_MAX, type callerSchema, type eventAccessSchema } from "./schemas/bus.ts";
import { catalogInternal } from "./subjects.ts";

export type Caller = z.infer<typeof callerSchema>;
export type EventAccess = z.infer<typeof eventAccessSchema>;

export interface Access {
  caller: Caller | null;
  /** Null when the event does not exist, is deleted, or the caller may not see it. */
  event: EventAccess | null;
}

/** An event key the catalog can look up: a bigint id or an 8-hex identifier. */
export function isEventKey(key: string | undefined | null): key is string {
  return !!key && (isId(key) || /^[0-9a-f]{8}$/.test(key));
}

/** The caller and each event asked for (null: as `Access.event`), by the key asked with. */
export interface ManyAccess {
  caller: Caller | null;
  events: Map<string, EventAccess | null>;
}

/**
 * `askAccess` for many events in one request (one per `ACCESS_EVENTS_MAX` keys): what the
 * parents of an include need, without a round trip each. Keys no event can have answer null.
 */
export async function askAccessMany(
  bus: Bus,
  actor: Actor | null,
  events: readonly string[],
): Promise<ManyAccess> {
  const answers = new Map<string, EventAccess | null>(events.map((key) => [key, null]));
  const keys = [...answers.keys()].filter(isEventKey);
  if (!keys.length) return { caller: (await askAccess(bus, actor)).caller, events: answers };
  const chunks = [];
  for (let i = 0; i < keys.length; i += ACCESS_EVENTS_MAX) {
    chunks.push(keys.slice(i, i + ACCESS_EVENTS_MAX));
  }
  const replies = await Promise.all(
    chunks.map((chunk) => bus.request(catalogInternal.access, { actor, events: chunk })),
  );
  // A key the answer leaves out stays null: refused, never allowed by mistake.
  for (const reply of replies) {
    for (const key of Object.keys(reply.events ?? {})) answers.set(key, reply.events![key]);
  }
  return { caller: replies[0].caller, events: answers };
}

/** The caller and, when `event` is given, that event with the caller's roles on it. */
export async function askAccess(
  bus: Bus,
  actor: Actor | null,
  event?: string | null,
): Promise<Access> {
  const known = event !== undefined && event !== null && isEventKey(event);
  const answer = await bus.request(catalogInternal.access, {
    actor,
    ...(known ? { event } : {}),
  });
  return known ? answer : { caller: answer.caller, event: null };
}

// The checks live in the handler kit, one signature for every service; kept importable here.
export { isAdmin, requireLogin } from "./handlers/guards.ts";

/** Admins, and the event's owners and organizers. */
export function isOrganizer(caller: Caller | null, event: EventAccess | null): boolean {
  if (isAdmin(caller)) return true;
  return !!caller && !!event && event.roles.some((r) => r === "owner" || r === "organizer");
}

/** Admins, and the event's owners, organizers and co-organizers. */
export function isCoorganizer(caller: Caller | null, event: EventAccess | null): boolean {
  if (isAdmin(caller)) return true;
  return !!caller && !!event && event.roles.length > 0;
}

/** The caller, when an admin or an owner or organizer of the event; 401 or 403 otherwise. */
export function requireOrganizer(
  caller: Caller | null,
  event: EventAccess | null,
  what = "do this",
): Caller {
  const known = requireLogin(caller);
  if (isOrganizer(known, event)) return known;
  throw new ForbiddenError(`Cannot ${what}: only the event's organizers and admins may`);
}

/** The caller, when an admin or one of the event's co-organizers; 401 or 403 otherwise. */
export function requireCoorganizer(
  caller: Caller | null,
  event: EventAccess | null,
  what = "do this",
): Caller {
  const known = requireLogin(caller);
  if (isCoorganizer(known, event)) return known;
  throw new ForbiddenError(`Cannot ${what}: only the event's co-organizers and admins may`);
}

export function factActor(caller: Caller | null): FactActor {
  return caller ? { id: caller.id, email: caller.email } : null;
}
