/**
 * How facts are named, apart from what they carry: a fact type's parts, its NATS subject, and the
 * URL collection of each resource facts announce. The gateway's cache needs these names and
 * nothing else of the registry (shared/fact_catalog.ts, whose payload schemas load zod); keeping
 * them here keeps ~10 MiB of schemas out of the gateway (README, "Benchmark").
 *
 * @example
 * ```ts
 * import { FACT_COLLECTIONS, factSubject, parseFactType } from "@shared/fact_names.ts";
 * parseFactType("catalog.event.updated"); // { service: "catalog", resource: "event", verb: "updated" }
 * factSubject("catalog.event.updated"); // "facts.catalog.event.updated"
 * FACT_COLLECTIONS.event; // "events"
 * ```
 */

/** The URL collection of each resource type facts announce: a fact's `subject` is `/v1/<collection>/<id>`. */
export const FACT_COLLECTIONS = {
  user: "users",
  "users-events-role": "users-events-roles",
  event: "events",
  "event-topic": "event-topics",
  "event-sub-topic": "event-sub-topics",
  ticket: "tickets",
  "discount-code": "discount-codes",
  "stripe-authorization": "stripe-authorizations",
} as const;

/**
 * Facts of something that happened which no cacheable reply shows: a login issues a token and
 * stamps the user's `last-accessed-at`, which only the user and admins see, and their replies are
 * never cached. Caches keep what they hold on these (a login used to drop every anonymous page
 * that included a user).
 */
export const FACTS_CHANGING_NO_PUBLIC_REPLY: ReadonlySet<string> = new Set([
  "catalog.user.logged-in",
]);

/** A resource type that facts announce, e.g. `"event"`. */
export type FactResource = keyof typeof FACT_COLLECTIONS;

/** The parts of a fact type: `catalog.event.updated` -> catalog, event, updated (and `v2`). */
export function parseFactType(
  type: string,
): { service: string; resource: string; verb: string; version?: string } | undefined {
  const [service, resource, verb, version, ...rest] = type.split(".");
  if (!service || !resource || !verb || rest.length) return undefined;
  if (version !== undefined && !/^v\d+$/.test(version)) return undefined;
  return version ? { service, resource, verb, version } : { service, resource, verb };
}

/** The NATS subject of a fact type, without the bus prefix: `facts.catalog.event.updated`. */
export function factSubject(type: string): string {
  return `facts.${type}`;
}
