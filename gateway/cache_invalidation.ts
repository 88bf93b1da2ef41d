/**
 * Keeps the gateway's cache true to the facts: every gateway instance hears every fact (a plain
 * subscription on `<prefix>.facts.>`, no queue group) and drops the entries it touches. Facts
 * heard over core NATS are at most once, so whenever the subscription may have missed one (the
 * connection dropped, went stale, or the server or client called us a slow consumer) the cache
 * is emptied, and while disconnected it serves and stores nothing (shared/fact_gaps.ts); facts
 * lost between NATS nodes, which leave the connection untouched, are found by comparing the fact
 * stream with what was heard (gateway/unheard_facts.ts).
 *
 * A gateway that relays a write also tells its peers at once what the write touched (on
 * `<prefix>.gateway.cache.touched`, outside the fact stream): the fact follows only after the
 * owning service's outbox relay publishes it, which takes a database round trip or two. It
 * skips its own announcements: it dropped those entries before answering the write, and a
 * second drop would only throw away replies fetched since, which already show the write.
 */
import type { Bus } from "@shared/bus.ts";
import { type TagRecord, touchedBy } from "@shared/cache_tags.ts";
import { FACTS_CHANGING_NO_PUBLIC_REPLY, parseFactType } from "@shared/fact_names.ts";
import { emptyOnMissedFacts } from "@shared/fact_gaps.ts";
import type { Logger } from "@shared/log.ts";
import { facts, gatewayTouched } from "@shared/subjects.ts";
import { announceTouched as announce, ORIGIN_HEADER, touchedTags } from "@shared/cache_touched.ts";
import type { ResponseCache } from "./cache.ts";
import { watchCache } from "./cache_metrics.ts";
import { emptyOnUnheardFacts, FactHearing } from "./unheard_facts.ts";

/** Each cache's name on the bus: one per gateway instance, even when two share a process. */
const origins = new WeakMap<ResponseCache, string>();

function originOf(cache: ResponseCache): string {
  let origin = origins.get(cache);
  if (origin === undefined) origins.set(cache, origin = crypto.randomUUID());
  return origin;
}

/**
 * Tells the other gateways what a relayed write touched; `from` is the cache that has dropped it
 * already (it ignores the announcement when it comes back).
 */
export function announceTouched(bus: Bus, tags: readonly string[], from?: ResponseCache): void {
  announce(bus, tags, { origin: from && originOf(from) });
}

/** The tags a fact touches, or undefined when it cannot be read (then everything may be stale). */
function factTags(raw: unknown): string[] | undefined {
  const fact = raw as { type?: unknown; data?: { id?: unknown } } | null;
  const parts = typeof fact?.type === "string" ? parseFactType(fact.type) : undefined;
  const id = fact?.data?.id;
  if (!parts || (typeof id !== "string" && typeof id !== "number")) return undefined;
  if (FACTS_CHANGING_NO_PUBLIC_REPLY.has(fact!.type as string)) return [];
  return touchedBy(parts.resource, { ...fact!.data, id: String(id) } as TagRecord);
}

/**
 * Subscribes `cache` to the facts of `bus` for as long as its connection lasts, and reports it in
 * the metrics meanwhile (gateway/cache_metrics.ts). There is no unsubscribing: a cache that no
 * longer hears the facts must not serve, so it goes with its connection (until 2026-12-06 this
 * returned a stop function nothing called, found by a mutation review).
 *
 * @example
 * ```ts ignore
 * invalidateOnFacts(bus, cache, logger);
 * ```
 */
export function invalidateOnFacts(
  bus: Bus,
  cache: ResponseCache,
  logger: Logger,
  options: { unheardCheckMs?: number } = {},
): void {
  const hearing = new FactHearing();
  bus.nc.subscribe(bus.subject(facts.all), {
    callback: (error, msg) => {
      if (error) {
        logger.warn("cache emptied: the fact subscription failed", { error });
        return cache.clear();
      }
      hearing.heard(msg);
      let tags: string[] | undefined;
      try {
        tags = factTags(msg.json());
      } catch {
        tags = undefined;
      }
      if (tags) return cache.invalidate(tags);
      logger.warn("cache emptied: a message on the fact subjects is no fact", {
        subject: msg.subject,
      });
      cache.clear();
    },
  });
  const origin = originOf(cache);
  bus.nc.subscribe(bus.subject(gatewayTouched), {
    callback: (error, msg) => {
      if (error) return cache.clear();
      if (msg.headers?.get(ORIGIN_HEADER) === origin) return;
      cache.invalidate(touchedTags(msg.data));
    },
  });
  emptyOnMissedFacts(bus, cache, logger, "cache").catch(() => cache.suspend(true));
  // Facts lost between NATS nodes leave this connection untouched (gateway/unheard_facts.ts).
  emptyOnUnheardFacts(bus, cache, { hearing, log: logger, intervalMs: options.unheardCheckMs });
  // The cache is in the metrics while it follows the facts: as long as the bus connection.
  const unwatch = watchCache(cache);
  bus.nc.closed().then(unwatch);
}
