/**
 * Where discounts, payments and audit learn who a caller is and their roles on an event: the
 * answers of `catalog.internal.access`, kept in a projection (shared/access_projection.ts) that
 * the catalog's facts, the gateways' write announcements and the connection's status keep
 * true (shared/access_facts.ts). With `ttlMs` 0 every request asks the catalog, as before.
 *
 * How fresh an answer is: a client's own write through a gateway counts on its next request
 * (the gateway announces it before replying); anyone else's within the fact's way through the
 * outbox relay (bench/access.ts measures it); any entry is at most `ttlMs` old.
 *
 * @example
 * ```ts ignore
 * const access = await startAccessSource(bus, { ttlMs: 5_000, log });
 * const { caller, event } = await access.ask(req.actor, req.params.id);
 * access.stop();
 * ```
 */
import {
  type Access,
  askAccess,
  askAccessMany,
  type Caller,
  isEventKey,
  type ManyAccess,
} from "./access.ts";
import type { Bus } from "./bus.ts";
import { UnauthorizedError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { Actor } from "./schemas/http.ts";
import { AccessProjection, type FetchMark } from "./access_projection.ts";
import { followAccessFacts } from "./access_facts.ts";

/** ACCESS_CACHE_TTL_MS unless set: the hard age limit of a kept answer. */
const DEFAULT_ACCESS_TTL_MS = 5_000;

export interface AccessSource {
  /** The caller and, when `event` is given, that event with the caller's roles. */
  ask(actor: Actor | null, event?: string | null): Promise<Access>;
  /** `ask` for many events, in one question to the catalog for those not kept. */
  askMany(actor: Actor | null, events: readonly string[]): Promise<ManyAccess>;
  /** Undefined when answers are not kept (`ttlMs` 0). */
  readonly projection?: AccessProjection;
  /** Stops following facts; later answers come from the catalog. */
  stop(): void;
}

export interface AccessSourceOptions {
  /** Hard age limit of a kept answer (default `DEFAULT_ACCESS_TTL_MS`); 0 keeps none. */
  ttlMs?: number;
  log: Logger;
}

/** The tags that drop an answer: its caller, the key asked for, the event's id and identifier. */
function tagsOf(actor: Actor | null, key: string | undefined, answer: Access): string[] {
  const tags = actor ? [`u:${actor.id}`] : [];
  if (key !== undefined) tags.push(`e:${key}`);
  if (answer.event) {
    if (answer.event.id !== key) tags.push(`e:${answer.event.id}`);
    if (answer.event.identifier !== key) tags.push(`e:${answer.event.identifier}`);
  }
  return tags;
}

/** Asks the catalog, or answers from the projection when `ttlMs` is above 0. */
export async function startAccessSource(
  bus: Bus,
  options: AccessSourceOptions,
): Promise<AccessSource> {
  const ttlMs = options.ttlMs ?? DEFAULT_ACCESS_TTL_MS;
  if (ttlMs <= 0) {
    return {
      ask: (actor, event) => askAccess(bus, actor, event),
      askMany: (actor, events) => askAccessMany(bus, actor, events),
      stop() {},
    };
  }
  const projection = new AccessProjection({ ttlMs });
  const stop = await followAccessFacts(bus, projection, options.log);
  const keep = keeper(projection);
  const ask = async (actor: Actor | null, event?: string | null) => {
    const key = isEventKey(event) ? event : undefined;
    const hit = projection.lookup(entryKey(actor, key));
    if (hit) return hit;
    const began = projection.begin();
    const answer = await askAccess(bus, actor, key);
    keep(actor, key, answer, began);
    // Who the caller is came with it: kept as the answer without an event too, so a later
    // question about the caller alone (shared/caller_first.ts after a refusal) is no round trip.
    if (actor && key !== undefined) {
      keep(actor, undefined, { caller: answer.caller, event: null }, began);
    }
    return answer;
  };
  const askMany = async (actor: Actor | null, events: readonly string[]) => {
    const answers = new Map<string, Access["event"]>(events.map((key) => [key, null]));
    let caller: Caller | null | undefined;
    const missing: string[] = [];
    for (const key of [...answers.keys()].filter(isEventKey)) {
      const hit = projection.lookup(entryKey(actor, key));
      if (hit) {
        caller = hit.caller;
        answers.set(key, hit.event);
      } else missing.push(key);
    }
    if (!missing.length) return { caller: caller ?? (await ask(actor)).caller, events: answers };
    const began = projection.begin();
    const asked = await askAccessMany(bus, actor, missing);
    for (const key of missing) {
      const answer = { caller: asked.caller, event: asked.events.get(key) ?? null };
      keep(actor, key, answer, began);
      answers.set(key, answer.event);
    }
    if (actor) keep(actor, undefined, { caller: asked.caller, event: null }, began);
    return { caller: asked.caller, events: answers };
  };
  return { projection, stop, ask, askMany };
}

/**
 * Where an answer is kept: a token's version is part of the key, so an answer fetched with a
 * fresh token is never served to a stale one (the catalog refuses that one: 401). A change of
 * version drops the user's answers too (its `catalog.user.updated` fact, the gateway's
 * announcement).
 */
function entryKey(actor: Actor | null, key: string | undefined): string {
  return actor ? `${actor.id}.${actor.tokenVersion ?? 0}/${key ?? ""}` : `/${key ?? ""}`;
}

/** Stores an answer fetched since `began` (about `key`, or the caller alone) in `projection`. */
function keeper(projection: AccessProjection) {
  return (actor: Actor | null, key: string | undefined, answer: Access, began: FetchMark) => {
    projection.store(entryKey(actor, key), answer, tagsOf(actor, key, answer), began);
  };
}

/**
 * Refuses (401) an actor the catalog no longer knows (deleted user, or a token older than the
 * user's last password change): for `serveContract`'s `authenticate`.
 */
export function authenticateWith(access: AccessSource) {
  return async (actor: Actor): Promise<void> => {
    const { caller } = await access.ask(actor);
    if (!caller) {
      throw new UnauthorizedError("Cannot authenticate: the token's user does not exist");
    }
  };
}
