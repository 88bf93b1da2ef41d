/**
 * The gateway's response cache (issue 11): anonymous replies of public reads, kept by URL and
 * dropped by tag when a fact or a relayed write touches them (shared/cache_tags.ts), bounded by
 * bytes with least-recently-used eviction.
 *
 * Three rules keep it from serving what is stale:
 * - a reply is not stored when one of its tags was touched, or the cache was emptied, while it
 *   was being fetched (it may have been read before the change);
 * - a reply fetched within `settleMs` of a change to one of its tags lives only until
 *   `settleMs` after that change: services that follow other services' facts (the discounts'
 *   projection of events, the catalog's `is-stripe-linked`) apply them a moment later, without
 *   a fact of their own;
 * - every entry expires after `ttlMs` whatever happens (and at the reply's own expiry).
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
}

interface Touch {
  /** The change's sequence number (see `begin`). */
  seq: number;
  at: number;
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
  now?: () => number;
}

/**
 * What an entry costs beyond its body, key and tags: the objects, the map slots, the body's own
 * ArrayBuffer. Measured: 65,536 entries of 420-byte bodies held ~1.9 kB each.
 */
const ENTRY_OVERHEAD = 1_280;
const TAG_OVERHEAD = 96;

export class ResponseCache {
  readonly maxBytes: number;
  readonly ttlMs: number;
  readonly settleMs: number;
  readonly #memoryMs: number;
  readonly #now: () => number;
  /** In least-recently-used order: a hit moves its entry to the end. */
  readonly #entries = new Map<string, Entry>();
  readonly #byTag = new Map<string, Set<string>>();
  /** Recent changes by tag, oldest first. */
  readonly #touched = new Map<string, Touch>();
  #bytes = 0;
  #seq = 0;
  /** Requests begun before this may not store (the cache was emptied, or a change forgotten). */
  #floor = 0;
  #suspended = false;

  constructor(options: CacheOptions) {
    this.maxBytes = options.maxBytes;
    this.ttlMs = options.ttlMs ?? 60_000;
    this.settleMs = options.settleMs ?? 1_000;
    this.#memoryMs = Math.max(options.memoryMs ?? 30_000, this.settleMs);
    this.#now = options.now ?? Date.now;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Marks the start of a fetch; pass the mark to `store`. */
  begin(): number {
    return this.#seq;
  }

  /** The live entry for `key`, if any (and it becomes the most recently used). */
  lookup(key: string): CachedReply | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.#suspended || entry.until <= this.#now()) {
      this.#remove(entry);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry;
  }

  /** Whether nothing is served or stored (see `suspend`). */
  get suspended(): boolean {
    return this.#suspended;
  }

  /**
   * Whether a reply with `tags`, fetched since `began`, is as new as anything the cache knows
   * of: none of its tags changed, and the cache was not emptied, since it began.
   */
  fresh(tags: readonly string[], began: number): boolean {
    if (began < this.#floor) return false;
    for (const tag of tags) {
      const touch = this.#touched.get(tag);
      if (touch !== undefined && touch.seq > began) return false;
    }
    return true;
  }

  /** Keeps a reply fetched since `began`, unless a change or an outage may have made it stale. */
  store(key: string, reply: CachedReply, began: number): boolean {
    if (this.#suspended || !this.fresh(reply.tags, began)) return false;
    const now = this.#now();
    let until = Math.min(now + this.ttlMs, reply.expires ?? Infinity);
    for (const tag of reply.tags) {
      const touch = this.#touched.get(tag);
      if (touch !== undefined && now - touch.at < this.settleMs) {
        until = Math.min(until, touch.at + this.settleMs);
      }
    }
    let size = ENTRY_OVERHEAD + key.length * 2 + reply.body.byteLength;
    for (const tag of reply.tags) size += TAG_OVERHEAD + tag.length * 2;
    if (until <= now || size > this.maxBytes) return false;
    const old = this.#entries.get(key);
    if (old) this.#remove(old);
    const entry: Entry = { ...reply, key, size, until };
    this.#entries.set(key, entry);
    this.#bytes += size;
    for (const tag of reply.tags) {
      let keys = this.#byTag.get(tag);
      if (keys === undefined) this.#byTag.set(tag, keys = new Set());
      keys.add(key);
    }
    this.#evict();
    return true;
  }

  /** Drops every entry carrying one of `tags`, and remembers the change for fetches in flight. */
  invalidate(tags: Iterable<string>): void {
    const now = this.#now();
    const seq = ++this.#seq;
    for (const tag of tags) {
      this.#touched.delete(tag);
      this.#touched.set(tag, { seq, at: now });
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      for (const key of keys) {
        const entry = this.#entries.get(key);
        if (entry) this.#remove(entry);
      }
    }
    this.#forget(now);
  }

  /** Empties the cache; nothing fetched before now may be stored. */
  clear(): void {
    this.#entries.clear();
    this.#byTag.clear();
    this.#touched.clear();
    this.#bytes = 0;
    this.#floor = ++this.#seq;
  }

  /**
   * While suspended (the fact subscription is interrupted) nothing is served or stored; the
   * cache is emptied both when it is suspended and when it resumes.
   */
  suspend(suspended: boolean): void {
    this.#suspended = suspended;
    this.clear();
  }

  #remove(entry: Entry): void {
    this.#entries.delete(entry.key);
    this.#bytes -= entry.size;
    for (const tag of entry.tags) {
      const keys = this.#byTag.get(tag);
      keys?.delete(entry.key);
      if (keys?.size === 0) this.#byTag.delete(tag);
    }
  }

  #evict(): void {
    for (const entry of this.#entries.values()) {
      if (this.#bytes <= this.maxBytes) return;
      this.#remove(entry);
    }
  }

  /** Forgets changes older than any fetch still in flight could be (raising the floor). */
  #forget(now: number): void {
    for (const [tag, touch] of this.#touched) {
      if (now - touch.at < this.#memoryMs) return;
      this.#touched.delete(tag);
      this.#floor = Math.max(this.#floor, touch.seq);
    }
  }
}
