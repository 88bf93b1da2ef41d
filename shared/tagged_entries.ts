/**
 * What the gateway's response cache (gateway/cache.ts) and the services' access projection
 * (shared/access_projection.ts) share: entries kept by key and dropped by tag when something
 * they show changes, and the rules that keep a fetch in flight from storing what such a change
 * may have made stale. Each owner adds its own bound and order (bytes and an LRU list, or a
 * count and the map's order) and learns of every removal through `onRemove`.
 *
 * The rules, in terms of a sequence number of changes (`begin` marks a fetch's start):
 * - a reply fetched since `began` is `fresh` unless one of its tags changed, or everything was
 *   emptied, after `began`; only fresh replies may be stored;
 * - a change may come with a settle time: entries of its tags stored before it is over live
 *   only until then (`until`), for state a service derives a moment later without a change of
 *   its own;
 * - changes are remembered `memoryMs` (longer than any fetch can last); forgetting one raises
 *   the floor below which no fetch may store;
 * - while suspended (the change feed is interrupted) nothing is served or stored; suspending and
 *   resuming both empty everything;
 * - emptying everything may come with a settle time too, which then holds for every tag: after
 *   an interruption the changes missed are unknown, and whoever derives state from them may still
 *   be catching up.
 *
 * @example
 * ```ts
 * import { TaggedEntries } from "@shared/tagged_entries.ts";
 * const entries = new TaggedEntries({ memoryMs: 30_000, onRemove: () => {} });
 * const began = entries.begin();
 * if (entries.fresh(["event:5"], began)) {
 *   entries.add({ key: "/v1/events/5", tags: ["event:5"], until: entries.now() + 60_000 });
 * }
 * entries.change(["event:5"], 0);
 * console.log(entries.get("/v1/events/5")); // undefined
 * ```
 */

export interface TaggedEntry {
  key: string;
  tags: readonly string[];
  /** When it stops being served (ms since epoch). */
  until: number;
}

interface Change {
  /** The change's sequence number (see `begin`). */
  seq: number;
  at: number;
  /** Entries of its tag stored before this live at most until it. */
  settleUntil: number;
}

export interface TaggedEntriesOptions<E> {
  /** How long changes are remembered for fetches still in flight. */
  memoryMs: number;
  /** Called for every entry that leaves (dropped, replaced, removed; not on `clear`). */
  onRemove: (entry: E) => void;
  /**
   * The clock entries are aged by, in ms (default `performance.now`: it only moves forward). The
   * wall clock is stepped by NTP or an operator: set back an hour, it kept every entry, and the
   * changes remembered for fetches in flight, an hour on top of their limits (a review).
   */
  now?: () => number;
}

export class TaggedEntries<E extends TaggedEntry> {
  /** By key, in the order they were added (or `renewed`). */
  readonly #entries = new Map<string, E>();
  readonly #byTag = new Map<string, Set<string>>();
  /** Recent changes by tag, oldest first. */
  readonly #changes = new Map<string, Change>();
  readonly #memoryMs: number;
  readonly #onRemove: (entry: E) => void;
  readonly now: () => number;
  #seq = 0;
  /** Fetches begun before this may not store (everything was emptied, or a change forgotten). */
  #floor = 0;
  /** Entries stored before this live at most until it, whatever their tags (see `clear`). */
  #settleAllUntil = 0;
  #suspended = false;

  constructor(options: TaggedEntriesOptions<E>) {
    this.#memoryMs = options.memoryMs;
    this.#onRemove = options.onRemove;
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.#entries.size;
  }

  get suspended(): boolean {
    return this.#suspended;
  }

  /** Marks the start of a fetch; pass the mark to `fresh`. */
  begin(): number {
    return this.#seq;
  }

  /** The entry for `key` while it may be served; an expired one is removed. */
  get(key: string): E | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.#suspended || entry.until <= this.now()) {
      this.remove(entry);
      return undefined;
    }
    return entry;
  }

  /** Whether a reply with `tags` fetched since `began` is as new as every change heard of. */
  fresh(tags: readonly string[], began: number): boolean {
    if (this.#suspended || began < this.#floor) return false;
    for (const tag of tags) {
      const change = this.#changes.get(tag);
      if (change !== undefined && change.seq > began) return false;
    }
    return true;
  }

  /**
   * `until`, cut short by the settle time of each change of one of `tags` (or emptying) whose
   * settle time had not ended when the fetch was asked for (`askedAt`, default now): what it read
   * may predate what a follower derives from that change, however late its answer came.
   */
  settled(tags: readonly string[], until: number, askedAt = this.now()): number {
    if (this.#settleAllUntil > askedAt) until = Math.min(until, this.#settleAllUntil);
    for (const tag of tags) {
      const settleUntil = this.#changes.get(tag)?.settleUntil ?? 0;
      if (settleUntil > askedAt) until = Math.min(until, settleUntil);
    }
    return until;
  }

  /** Keeps `entry`, replacing any under its key. */
  add(entry: E): void {
    const old = this.#entries.get(entry.key);
    if (old) this.remove(old);
    this.#entries.set(entry.key, entry);
    for (const tag of entry.tags) {
      let keys = this.#byTag.get(tag);
      if (keys === undefined) this.#byTag.set(tag, keys = new Set());
      keys.add(entry.key);
    }
  }

  /** Moves `entry` to the end of the order (most recently used). */
  renew(entry: E): void {
    this.#entries.delete(entry.key);
    this.#entries.set(entry.key, entry);
  }

  /** The first entry in order (least recently added or renewed). */
  first(): E | undefined {
    for (const entry of this.#entries.values()) return entry;
    return undefined;
  }

  remove(entry: E): void {
    this.#entries.delete(entry.key);
    for (const tag of entry.tags) {
      const keys = this.#byTag.get(tag);
      keys?.delete(entry.key);
      if (keys?.size === 0) this.#byTag.delete(tag);
    }
    this.#onRemove(entry);
  }

  /** Drops every entry carrying one of `tags` and remembers the change (see the module doc). */
  change(tags: Iterable<string>, settleMs: number): void {
    const now = this.now();
    const seq = ++this.#seq;
    for (const tag of tags) {
      const settleUntil = Math.max(now + settleMs, this.#changes.get(tag)?.settleUntil ?? 0);
      this.#changes.delete(tag);
      this.#changes.set(tag, { seq, at: now, settleUntil });
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      for (const key of keys) {
        const entry = this.#entries.get(key);
        if (entry) this.remove(entry);
      }
    }
    this.#forget(now);
  }

  /**
   * Empties everything; nothing fetched before now may be stored, and what is stored within
   * `settleMs` lives only until then (the changes' own settle times are forgotten with them).
   */
  clear(settleMs = 0): void {
    this.#entries.clear();
    this.#byTag.clear();
    this.#changes.clear();
    this.#floor = ++this.#seq;
    this.#settleAllUntil = Math.max(this.#settleAllUntil, this.now() + settleMs);
  }

  /** Suspends (nothing served or stored) or resumes; empties everything either way (`clear`). */
  suspend(suspended: boolean, settleMs = 0): void {
    this.#suspended = suspended;
    this.clear(settleMs);
  }

  /** Forgets changes older than any fetch still in flight could be (raising the floor). */
  #forget(now: number): void {
    for (const [tag, change] of this.#changes) {
      if (now - change.at < this.#memoryMs) return;
      this.#changes.delete(tag);
      this.#floor = Math.max(this.#floor, change.seq);
    }
  }
}
