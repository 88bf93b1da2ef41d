/**
 * The gateway's response cache (issue 11): anonymous replies of public reads, kept by URL and
 * dropped by tag when a fact or a relayed write touches them (shared/cache_tags.ts), bounded by
 * bytes with least-recently-used eviction.
 *
 * Three rules keep it from serving what is stale (kept by shared/tagged_entries.ts, which the
 * services' access projection shares):
 * - a reply is not stored when one of its tags was touched, or the cache was emptied, while it
 *   was being fetched (it may have been read before the change);
 * - a reply fetched within `settleMs` of a change to one of its tags lives only until
 *   `settleMs` after that change: services that follow other services' facts (the discounts'
 *   projection of events, the catalog's `is-stripe-linked`) apply them a moment later, without
 *   a fact of their own;
 * - every entry expires after `ttlMs` whatever happens (and at the reply's own expiry);
 * - after the cache is emptied (missed facts, a reconnect), what it stores within `settleMs`
 *   lives only until then, whatever its tags: the changes missed are unknown.
 *
 * @example
 * ```ts
 * import { ResponseCache } from "./cache.ts";
 * const cache = new ResponseCache({ maxBytes: 1 << 20 });
 * const began = cache.begin();
 * const body = new TextEncoder().encode('{"data":[]}');
 * cache.store("/v1/events", { status: 200, contentType: "application/vnd.api+json", body, etag: '"x"', tags: ["events"] }, began);
 * cache.invalidate(["events"]);
 * console.log(cache.lookup("/v1/events")); // undefined
 * ```
 */

import { EVERY_TAG } from "@shared/cache_tags.ts";
import { TaggedEntries } from "@shared/tagged_entries.ts";

/** What a cached reply holds: everything the gateway sends for it. */
export interface CachedReply {
  status: number;
  contentType: string;
  body: Uint8Array;
  etag: string;
  tags: readonly string[];
  /** When it stops being true on its own (ms since epoch), if ever. */
  expires?: number;
}

interface Entry extends CachedReply {
  key: string;
  size: number;
  until: number;
  /** The slab its body lies in (see `Slabs`), -1 for a body of its own. */
  slab: number;
  /** Its neighbours in least-recently-used order (see `ResponseCache.#oldest`). */
  older: Entry | undefined;
  newer: Entry | undefined;
}

/**
 * Why the cache was emptied whole: its fact feed went away (`suspend`) or came back
 * (`reconnect`), the fact stream could not be read to tell whether facts were missed
 * (`unverified`), facts were missed (`missed_facts`), or a change touched more than it could name
 * (`everything_touched`: shared/cache_tags.ts's `EVERY_TAG`).
 */
export type FlushReason =
  | "suspend"
  | "reconnect"
  | "unverified"
  | "missed_facts"
  | "everything_touched";

/**
 * Why the cache is suspended: its connection's status (shared/fact_gaps.ts), or a fact stream it
 * cannot read (gateway/unheard_facts.ts). It serves again once no cause holds.
 */
export type SuspendCause = "connection" | "unverified";

/**
 * What the cache has done since it was made, for the metrics (gateway/cache_metrics.ts): plain
 * counts, kept as fields so that a hit costs one addition and no label lookup.
 */
export interface CacheCounts {
  /** Lookups that found a live entry (a 304 from the cache included). */
  hits: number;
  /** Lookups that found none (the request then went to its service). */
  misses: number;
  /** Replies stored. */
  stored: number;
  /** Replies not stored: a tag changed, or the cache was emptied or suspended, while fetched. */
  stale: number;
  /** Replies not stored: larger than the whole cache. */
  tooLarge: number;
  /** Entries evicted, least recently used first, to make room. */
  evicted: number;
  /** Entries dropped because a fact or a write touched one of their tags. */
  invalidated: number;
  /** Times the cache was emptied whole, by reason. */
  flushes: Record<FlushReason, number>;
}

export interface CacheOptions {
  /** Total bytes of entries (bodies, keys, tags, bookkeeping); 0 keeps nothing. */
  maxBytes: number;
  /** Hard age limit of every entry (default 60 s). */
  ttlMs?: number;
  /** How long after a change its tags' new entries stay short-lived (default 1 s). */
  settleMs?: number;
  /** How long changes are remembered for requests still in flight (default 30 s). */
  memoryMs?: number;
  /** The clock entries are aged by (default: TaggedEntries', which only moves forward). */
  now?: () => number;
  /** The wall clock a reply's own `expires` is read against (default `Date.now`). */
  wallNow?: () => number;
}

/**
 * What an entry costs beyond its body, key and tags: the objects, the map slots, the body's own
 * ArrayBuffer. Measured: 65,536 entries of 420-byte bodies held ~1.9 kB each.
 */
const ENTRY_OVERHEAD = 1_280;
const TAG_OVERHEAD = 96;

/**
 * Bodies packed into large shared buffers, filled in turn and never written twice: one
 * allocation per slab instead of one per body, so that the allocator (malloc, outside V8's
 * compacting heap) is not fragmented by many small bodies of different lifetimes. A slab is
 * freed when no entry's body lies in it any more; entries read often are copied to the newest
 * slab (`lookup`) so that they do not keep old slabs alive. A slab counts in full against
 * CACHE_MAX_BYTES while any entry lies in it: the room that dropped entries leave in a slab is
 * held until the slab is freed, so it is evicted for like any other byte.
 */
/** Slabs older than this many behind the newest are moved out of when read (half a full cache). */
const SLAB_SPAN = 128;
/** Caches smaller than this give every body a buffer of its own (a slab would crowd them out). */
const SLABS_FROM_BYTES = 256 * 4_096;

class Slabs {
  readonly #slabBytes: number;
  #slab = new Uint8Array(0);
  #used = 0;
  /** Slabs begun so far: the newest one's number. */
  #count = 0;
  /** How many entries' bodies lie in each slab still held (the one being filled, while empty, is
   * not counted: at most 1/256 of the cache). */
  readonly #live = new Map<number, number>();

  constructor(maxBytes: number) {
    // ~256 slabs in a full cache, of 4 kB to 256 kB.
    this.#slabBytes = maxBytes < SLABS_FROM_BYTES
      ? 0
      : Math.min(Math.floor(maxBytes / 256), 262_144);
  }

  get newest(): number {
    return this.#count;
  }

  /** Bytes of the slabs held. */
  get held(): number {
    return this.#live.size * this.#slabBytes;
  }

  /** A copy of `body` and the slab holding it (-1 when it has a buffer of its own). */
  pack(body: Uint8Array): [Uint8Array, number] {
    const length = body.byteLength;
    if (this.#slabBytes === 0 || length * 4 > this.#slabBytes) return [body.slice(), -1];
    if (this.#used + length > this.#slab.byteLength) {
      this.#slab = new Uint8Array(this.#slabBytes);
      this.#used = 0;
      this.#count++;
    }
    const copy = this.#slab.subarray(this.#used, this.#used + length);
    copy.set(body);
    this.#used += length;
    this.#live.set(this.#count, (this.#live.get(this.#count) ?? 0) + 1);
    return [copy, this.#count];
  }

  /** An entry whose body lay in `slab` is gone; the slab is freed with its last one. */
  release(slab: number): void {
    const live = this.#live.get(slab);
    if (live === undefined) return;
    if (live === 1) this.#live.delete(slab);
    else this.#live.set(slab, live - 1);
  }

  /** Every entry is gone. */
  reset(): void {
    this.#live.clear();
    this.#slab = new Uint8Array(0);
    this.#used = 0;
  }
}

export class ResponseCache {
  readonly maxBytes: number;
  readonly ttlMs: number;
  readonly settleMs: number;
  readonly #entries: TaggedEntries<Entry>;
  /**
   * Entries in least-recently-used order, a list through the entries themselves: a hit moves
   * its entry to the newest end, eviction takes the oldest. (A Map's insertion order would do,
   * but a Map iterated from its start skips every deleted slot not yet compacted: tens of µs
   * per eviction in a full cache.)
   */
  #oldest: Entry | undefined;
  #newest: Entry | undefined;
  readonly #slabs: Slabs;
  readonly #wallNow: () => number;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #stored = 0;
  #stale = 0;
  #tooLarge = 0;
  #evicted = 0;
  #invalidated = 0;
  readonly #flushes: Record<FlushReason, number> = {
    suspend: 0,
    reconnect: 0,
    unverified: 0,
    missed_facts: 0,
    everything_touched: 0,
  };
  readonly #suspendedFor = new Set<SuspendCause>();

  constructor(options: CacheOptions) {
    this.maxBytes = options.maxBytes;
    this.ttlMs = options.ttlMs ?? 60_000;
    this.settleMs = options.settleMs ?? 1_000;
    this.#entries = new TaggedEntries<Entry>({
      memoryMs: Math.max(options.memoryMs ?? 30_000, this.settleMs),
      onRemove: (entry) => this.#forgetEntry(entry),
      now: options.now,
    });
    this.#slabs = new Slabs(this.maxBytes);
    this.#wallNow = options.wallNow ?? Date.now;
  }

  /** Bytes held: entries (with the bodies that have buffers of their own) and slabs. */
  get bytes(): number {
    return this.#bytes + this.#slabs.held;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Marks the start of a fetch; pass the mark to `store`. */
  begin(): number {
    return this.#entries.begin();
  }

  /** The clock entries are aged by: read it when a fetch is asked for, for `store`. */
  now(): number {
    return this.#entries.now();
  }

  /** What the cache has done so far (a copy; read at scrape time). */
  get counts(): CacheCounts {
    return {
      hits: this.#hits,
      misses: this.#misses,
      stored: this.#stored,
      stale: this.#stale,
      tooLarge: this.#tooLarge,
      evicted: this.#evicted,
      invalidated: this.#invalidated,
      flushes: { ...this.#flushes },
    };
  }

  /** The live entry for `key`, if any (and it becomes the most recently used); counted. */
  lookup(key: string): CachedReply | undefined {
    const entry = this.#found(key);
    if (entry === undefined) this.#misses++;
    else this.#hits++;
    return entry;
  }

  /**
   * `lookup` for a short way (gateway/hit_path.ts) that hands a miss to the full path: only a hit
   * is counted here, since the full path's own `lookup` counts the miss.
   */
  lookupBeforeFullPath(key: string): CachedReply | undefined {
    const entry = this.#found(key);
    if (entry !== undefined) this.#hits++;
    return entry;
  }

  #found(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry !== this.#newest) {
      this.#unlink(entry);
      this.#append(entry);
    }
    if (entry.slab >= 0 && this.#slabs.newest - entry.slab > SLAB_SPAN) {
      const old = entry.slab;
      [entry.body, entry.slab] = this.#slabs.pack(entry.body);
      this.#slabs.release(old);
    }
    return entry;
  }

  /** Whether nothing is served or stored (see `suspend`). */
  get suspended(): boolean {
    return this.#entries.suspended;
  }

  /**
   * Whether a reply with `tags`, fetched since `began`, is as new as anything the cache knows
   * of: none of its tags changed, and the cache was not emptied, since it began.
   */
  fresh(tags: readonly string[], began: number): boolean {
    return this.#entries.fresh(tags, began);
  }

  /**
   * Keeps a reply fetched since `began`, unless a change or an outage may have made it stale.
   * `askedAt` (`now()` when the service was asked; default: now) is where its settle windows
   * and its age start: what it shows was read at some moment since then. Until 2026-12-05 both
   * started when it was stored, and a reply asked for within a change's settle window but
   * answered after it (a slow service) was kept the whole CACHE_TTL_MS (a review).
   */
  store(key: string, reply: CachedReply, began: number, askedAt?: number): boolean {
    if (!this.#entries.fresh(reply.tags, began)) {
      this.#stale++;
      return false;
    }
    const now = this.#entries.now();
    const asked = Math.min(askedAt ?? now, now);
    // The reply's own expiry is a wall time (a code's end): how far off it is now, on the clock
    // entries age by, which a step of the wall clock does not move.
    const ownUntil = reply.expires === undefined ? Infinity : now + reply.expires - this.#wallNow();
    const until = this.#entries.settled(
      reply.tags,
      Math.min(asked + this.ttlMs, ownUntil),
      asked,
    );
    let size = ENTRY_OVERHEAD + key.length * 2 + reply.body.byteLength;
    for (const tag of reply.tags) size += TAG_OVERHEAD + tag.length * 2;
    if (size > this.maxBytes) {
      this.#tooLarge++;
      return false;
    }
    if (until <= now) {
      this.#stale++;
      return false;
    }
    const [body, slab] = this.#slabs.pack(reply.body);
    // A body in a slab counts with its slab (`bytes`).
    if (slab >= 0) size -= body.byteLength;
    const entry: Entry = {
      status: reply.status,
      contentType: reply.contentType,
      body,
      etag: reply.etag,
      tags: reply.tags,
      expires: reply.expires,
      key,
      size,
      until,
      slab,
      older: undefined,
      newer: undefined,
    };
    this.#entries.add(entry);
    this.#append(entry);
    this.#bytes += size;
    this.#stored++;
    this.#evict();
    return true;
  }

  /**
   * Drops every entry carrying one of `tags`, and remembers the change for fetches in flight;
   * empties the cache for a change that touched everything (`EVERY_TAG`).
   */
  invalidate(tags: readonly string[]): void {
    if (tags.includes(EVERY_TAG)) return this.clear("everything_touched");
    const before = this.#entries.size;
    this.#entries.change(tags, this.settleMs);
    this.#invalidated += before - this.#entries.size;
  }

  /**
   * Empties the cache; nothing fetched before now may be stored, and what is stored within
   * `settleMs` lives only until then: the changes that made it empty it (missed facts, a
   * reconnect) are unknown, and services that follow facts may still be catching up.
   * Counted as a flush for `reason` unless the cache was suspended (then it held nothing).
   */
  clear(reason: FlushReason = "missed_facts"): void {
    if (!this.suspended) this.#flushes[reason]++;
    this.#entries.clear(this.settleMs);
    this.#emptied();
  }

  /**
   * While suspended for any `cause` (the fact subscription is interrupted, or the fact stream
   * cannot be read) nothing is served or stored; the cache is emptied both when it is suspended
   * and when a cause ends. One cause ending leaves it suspended while another holds (a
   * reconnect while the stream is still out of reach).
   */
  suspend(suspended: boolean, cause: SuspendCause = "connection"): void {
    // Counted once per outage: a suspended cache told again that it is suspended held nothing.
    if (!suspended && cause === "connection") this.#flushes.reconnect++;
    else if (suspended && !this.suspended) {
      this.#flushes[cause === "connection" ? "suspend" : "unverified"]++;
    }
    if (suspended) this.#suspendedFor.add(cause);
    else this.#suspendedFor.delete(cause);
    this.#entries.suspend(this.#suspendedFor.size > 0, this.settleMs);
    this.#emptied();
  }

  #emptied(): void {
    this.#oldest = this.#newest = undefined;
    this.#slabs.reset();
    this.#bytes = 0;
  }

  /** An entry left (see TaggedEntries' onRemove): its bytes, its slab, its place in the order. */
  #forgetEntry(entry: Entry): void {
    this.#unlink(entry);
    this.#slabs.release(entry.slab);
    this.#bytes -= entry.size;
  }

  #evict(): void {
    while (this.bytes > this.maxBytes && this.#oldest !== undefined) {
      this.#entries.remove(this.#oldest);
      this.#evicted++;
    }
  }

  #append(entry: Entry): void {
    entry.older = this.#newest;
    entry.newer = undefined;
    if (this.#newest === undefined) this.#oldest = entry;
    else this.#newest.newer = entry;
    this.#newest = entry;
  }

  #unlink(entry: Entry): void {
    const { older, newer } = entry;
    if (older === undefined) this.#oldest = newer;
    else older.newer = newer;
    if (newer === undefined) this.#newest = older;
    else newer.older = older;
    entry.older = entry.newer = undefined;
  }
}
