/**
 * The response cache's figures (gateway/cache.ts) in the process's metrics registry: lookups by
 * result, stores by result, evictions, invalidated entries, flushes by reason, and its bytes,
 * entries and bound. The cache counts in plain fields (`ResponseCache.counts`: a hit costs one
 * addition); a collector reads them at scrape time (and every 10 s for OpenTelemetry) and adds
 * what each watched cache counted since it last looked. With CACHE_MAX_BYTES=0 there is no cache
 * and none of these families has a series.
 *
 * @example
 * ```ts ignore
 * const unwatch = watchCache(cache);
 * // ... when the cache is no longer used:
 * unwatch();
 * ```
 */
import { metrics, type Series } from "@shared/metrics.ts";
import type { CacheCounts, FlushReason, ResponseCache } from "./cache.ts";

const lookups = metrics.counter(
  "oe_cache_lookups",
  "Response cache lookups of anonymous public reads, by result (hit, 304s included, or miss)",
  ["result"],
);
const stores = metrics.counter(
  "oe_cache_stores",
  "Replies fetched on a miss and stored, or not: stale (changed or emptied while fetched), too_large",
  ["result"],
);
const evictions = metrics.counter(
  "oe_cache_evictions",
  "Response cache entries evicted (least recently used) to make room within CACHE_MAX_BYTES",
);
const invalidated = metrics.counter(
  "oe_cache_invalidated_entries",
  "Response cache entries dropped because a fact or a relayed write touched them",
);
const flushes = metrics.counter(
  "oe_cache_flushes",
  "Times the response cache was emptied whole: suspend (connection lost), reconnect, unverified (fact stream unreadable), missed_facts, everything_touched",
  ["reason"],
);
const bytes = metrics.gauge("oe_cache_bytes", "Bytes the response cache holds (entries and slabs)");
const entries = metrics.gauge("oe_cache_entries", "Entries the response cache holds");
const maxBytes = metrics.gauge(
  "oe_cache_max_bytes",
  "The response cache's bound (CACHE_MAX_BYTES)",
);

const FLUSH_REASONS: readonly FlushReason[] = [
  "suspend",
  "reconnect",
  "unverified",
  "missed_facts",
  "everything_touched",
];

/** Each counter's series and how to read its count from `CacheCounts`. */
type Reading = [Series, (counts: CacheCounts) => number];

/** Made with the first watched cache, so that a gateway without a cache shows no series. */
let readings: Reading[] | undefined;
let gauges: { bytes: Series; entries: Series; maxBytes: Series } | undefined;

/** Every cache watched, with the counts already added to the series. */
const watched = new Map<ResponseCache, CacheCounts>();

/** The counts of a cache that has done nothing yet. */
function none(): CacheCounts {
  return {
    hits: 0,
    misses: 0,
    stored: 0,
    stale: 0,
    tooLarge: 0,
    evicted: 0,
    invalidated: 0,
    flushes: { suspend: 0, reconnect: 0, unverified: 0, missed_facts: 0, everything_touched: 0 },
  };
}

function makeSeries(): void {
  readings = [
    [lookups.series("hit"), (c) => c.hits],
    [lookups.series("miss"), (c) => c.misses],
    [stores.series("stored"), (c) => c.stored],
    [stores.series("stale"), (c) => c.stale],
    [stores.series("too_large"), (c) => c.tooLarge],
    [evictions.series(), (c) => c.evicted],
    [invalidated.series(), (c) => c.invalidated],
    ...FLUSH_REASONS.map((reason): Reading => [flushes.series(reason), (c) => c.flushes[reason]]),
  ];
  gauges = { bytes: bytes.series(), entries: entries.series(), maxBytes: maxBytes.series() };
  metrics.collect("cache", () => {
    collect();
    return Promise.resolve();
  });
}

/** Adds what `cache` counted since `counted` to the series; returns its counts now. */
function countSince(cache: ResponseCache, counted: CacheCounts): CacheCounts {
  const now = cache.counts;
  for (const [s, read] of readings!) {
    const delta = read(now) - read(counted);
    if (delta > 0) s.add(delta);
  }
  return now;
}

function collect(): void {
  let held = 0, size = 0, bound = 0;
  for (const [cache, counted] of watched) {
    watched.set(cache, countSince(cache, counted));
    held += cache.bytes;
    size += cache.size;
    bound += cache.maxBytes;
  }
  gauges!.bytes.set(held);
  gauges!.entries.set(size);
  gauges!.maxBytes.set(bound);
}

/**
 * Reports `cache` in the metrics (summed with any other cache of the process) until the returned
 * function is called, which counts what it did last and lets it go.
 */
export function watchCache(cache: ResponseCache): () => void {
  if (readings === undefined) makeSeries();
  watched.set(cache, none());
  return () => {
    const counted = watched.get(cache);
    if (counted === undefined) return;
    countSince(cache, counted);
    watched.delete(cache);
  };
}
