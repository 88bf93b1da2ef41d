/**
 * A projection of the catalog's access answers (issue 11, item 6): what
 * `catalog.internal.access` said about a caller and an event, kept by one service instance so
 * that a signed-in request does not ask the catalog twice in a row. It only holds answers; what
 * drops them is shared/access_facts.ts (the catalog's facts, the gateway's write
 * announcements, the connection's status).
 *
 * Four rules keep it from answering with a revoked role or admin flag:
 * - every entry dies `ttlMs` after it was fetched, whatever else happens (the hard age limit);
 * - an answer is not stored when one of its tags was dropped, or the projection emptied, while
 *   it was being fetched (it may have been read before the change);
 * - an answer fetched within `settleMs` of a `settle` of one of its tags lives only until
 *   `settleMs` after it: the catalog applies payments' facts (`isStripeLinked`) a moment later,
 *   without a fact of its own;
 * - while suspended (the fact subscription is interrupted) nothing is served or stored, and
 *   both suspending and resuming empty it.
 *
 * Tags are `u:<user id>` (the caller) and `e:<event key>` (the key asked for, and the event's id
 * and identifier from the answer, so a fact naming either drops it).
 *
 * @example
 * ```ts
 * import { AccessProjection } from "@shared/access_projection.ts";
 * const projection = new AccessProjection({ ttlMs: 5_000 });
 * const began = projection.begin();
 * const answer = { caller: null, event: null };
 * projection.store("/5", answer, ["e:5"], began);
 * projection.drop(["e:5"]);
 * console.log(projection.lookup("/5")); // undefined
 * ```
 */
import type { Access } from "./access.ts";

export interface AccessProjectionOptions {
  /** Hard age limit of every entry; 0 keeps nothing (every request asks the catalog). */
  ttlMs: number;
  /** Most entries kept (default 10,000); the least recently used go first. */
  maxEntries?: number;
  /** How long after a `settle` its tags' new entries stay short-lived (default 1 s). */
  settleMs?: number;
  /** How long drops are remembered for fetches still in flight (default 30 s). */
  memoryMs?: number;
  now?: () => number;
}

interface Entry {
  key: string;
  answer: Access;
  tags: readonly string[];
  until: number;
}

interface Touch {
  seq: number;
  at: number;
  /** Entries of this tag fetched before this time live at most until it. */
  settleUntil: number;
}

export class AccessProjection {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly settleMs: number;
  readonly #memoryMs: number;
  readonly #now: () => number;
  /** In least-recently-used order: a hit moves its entry to the end. */
  readonly #entries = new Map<string, Entry>();
  readonly #byTag = new Map<string, Set<string>>();
  /** Recent drops by tag, oldest first. */
  readonly #touched = new Map<string, Touch>();
  #seq = 0;
  /** Fetches begun before this may not store (the projection was emptied, or a drop forgotten). */
  #floor = 0;
  #suspended = false;

  constructor(options: AccessProjectionOptions) {
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.settleMs = options.settleMs ?? 1_000;
    this.#memoryMs = Math.max(options.memoryMs ?? 30_000, this.settleMs);
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get suspended(): boolean {
    return this.#suspended;
  }

  /** Marks the start of a fetch; pass the mark to `store`. */
  begin(): number {
    return this.#seq;
  }

  /** The live answer for `key`, if any. */
  lookup(key: string): Access | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.#suspended || entry.until <= this.#now()) {
      this.#remove(entry);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.answer;
  }

  /** Keeps an answer fetched since `began`, unless a drop or an outage may have made it stale. */
  store(key: string, answer: Access, tags: readonly string[], began: number): boolean {
    if (this.#suspended || began < this.#floor || this.ttlMs <= 0 || this.maxEntries <= 0) {
      return false;
    }
    const now = this.#now();
    let until = now + this.ttlMs;
    for (const tag of tags) {
      const touch = this.#touched.get(tag);
      if (touch === undefined) continue;
      if (touch.seq > began) return false;
      if (touch.settleUntil > now) until = Math.min(until, touch.settleUntil);
    }
    const old = this.#entries.get(key);
    if (old) this.#remove(old);
    const entry: Entry = { key, answer: deepFreeze(answer), tags, until };
    this.#entries.set(key, entry);
    for (const tag of tags) {
      let keys = this.#byTag.get(tag);
      if (keys === undefined) this.#byTag.set(tag, keys = new Set());
      keys.add(key);
    }
    for (const first of this.#entries.values()) {
      if (this.#entries.size <= this.maxEntries) break;
      this.#remove(first);
    }
    return true;
  }

  /** Drops every entry carrying one of `tags`, and remembers the drop for fetches in flight. */
  drop(tags: Iterable<string>): void {
    this.#touch(tags, 0);
  }

  /** `drop`, and entries of `tags` fetched in the next `settleMs` live only until then. */
  settle(tags: Iterable<string>): void {
    this.#touch(tags, this.settleMs);
  }

  /** Empties the projection; nothing fetched before now may be stored. */
  clear(): void {
    this.#entries.clear();
    this.#byTag.clear();
    this.#touched.clear();
    this.#floor = ++this.#seq;
  }

  /** Suspends (nothing served or stored) or resumes; empties the projection either way. */
  suspend(suspended: boolean): void {
    this.#suspended = suspended;
    this.clear();
  }

  #touch(tags: Iterable<string>, settleMs: number): void {
    const now = this.#now();
    const seq = ++this.#seq;
    for (const tag of tags) {
      const settleUntil = Math.max(now + settleMs, this.#touched.get(tag)?.settleUntil ?? 0);
      this.#touched.delete(tag);
      this.#touched.set(tag, { seq, at: now, settleUntil });
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      for (const key of keys) {
        const entry = this.#entries.get(key);
        if (entry) this.#remove(entry);
      }
    }
    this.#forget(now);
  }

  #remove(entry: Entry): void {
    this.#entries.delete(entry.key);
    for (const tag of entry.tags) {
      const keys = this.#byTag.get(tag);
      keys?.delete(entry.key);
      if (keys?.size === 0) this.#byTag.delete(tag);
    }
  }

  /** Forgets drops older than any fetch still in flight could be (raising the floor). */
  #forget(now: number): void {
    for (const [tag, touch] of this.#touched) {
      if (now - touch.at < this.#memoryMs) return;
      this.#touched.delete(tag);
      this.#floor = Math.max(this.#floor, touch.seq);
    }
  }
}

/** Handlers share one answer object: none of them may change it for the others. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
