/**
 * A projection of the catalog's access answers (issue 11, item 6): what
 * `catalog.internal.access` said about a caller and an event, kept by one service instance so
 * that a signed-in request does not ask the catalog twice in a row. It only holds answers; what
 * drops them is shared/access_facts.ts (the catalog's facts, the gateway's write
 * announcements, the connection's status).
 *
 * Four rules keep it from answering with a revoked role or admin flag (kept by
 * shared/tagged_entries.ts, which the gateway's response cache shares):
 * - every entry dies `ttlMs` after it was asked for, whatever else happens (the hard age limit);
 * - an answer is not stored when one of its tags was dropped, or the projection emptied, while
 *   it was being fetched (it may have been read before the change);
 * - an answer asked for within `settleMs` of a `settle` of one of its tags lives only until
 *   `settleMs` after it: the catalog applies payments' facts (`isStripeLinked`) a moment later
 *   (its own `catalog.event.updated` follows, but an answer read in between must not outlive it);
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
import { TaggedEntries, type TaggedEntry } from "./tagged_entries.ts";

export interface AccessProjectionOptions {
  /** Hard age limit of every entry; 0 keeps nothing (every request asks the catalog). */
  ttlMs: number;
  /** Most entries kept (default 10,000); the least recently used go first. */
  maxEntries?: number;
  /** How long after a `settle` its tags' new entries stay short-lived (default 1 s). */
  settleMs?: number;
  /** How long drops are remembered for fetches still in flight (default 30 s). */
  memoryMs?: number;
  /** The clock entries are aged by, in ms (default: TaggedEntries', which only moves forward). */
  now?: () => number;
}

interface Entry extends TaggedEntry {
  answer: Access;
}

/** Where a fetch began: for `store`, which must know what changed since and when it was asked. */
export interface FetchMark {
  /** The entries' change count when it was asked for (TaggedEntries' `begin`). */
  readonly began: number;
  /** The entries' clock then: the answer's age and settle windows start here. */
  readonly askedAt: number;
}

export class AccessProjection {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly settleMs: number;
  /** In least-recently-used order: a hit moves its entry to the end. */
  readonly #entries: TaggedEntries<Entry>;

  constructor(options: AccessProjectionOptions) {
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.settleMs = options.settleMs ?? 1_000;
    this.#entries = new TaggedEntries<Entry>({
      memoryMs: Math.max(options.memoryMs ?? 30_000, this.settleMs),
      onRemove: () => {},
      now: options.now,
    });
  }

  get size(): number {
    return this.#entries.size;
  }

  get suspended(): boolean {
    return this.#entries.suspended;
  }

  /** Marks the start of a fetch; pass the mark to `store`. */
  begin(): FetchMark {
    return { began: this.#entries.begin(), askedAt: this.#entries.now() };
  }

  /** The live answer for `key`, if any. */
  lookup(key: string): Access | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.renew(entry);
    return entry.answer;
  }

  /**
   * Keeps an answer fetched since `mark`, unless a drop or an outage may have made it stale. Its
   * age and settle windows start when it was asked for: what it says was read at some moment
   * since. Until 2026-12-05 they started when it was stored, and an answer asked for within a
   * settle but answered after it (a slow catalog) was kept the whole age limit (a review).
   */
  store(key: string, answer: Access, tags: readonly string[], mark: FetchMark): boolean {
    if (this.ttlMs <= 0 || this.maxEntries <= 0 || !this.#entries.fresh(tags, mark.began)) {
      return false;
    }
    const until = this.#entries.settled(tags, mark.askedAt + this.ttlMs, mark.askedAt);
    // Dead already (its settle window ended while it was fetched): not kept, as in the gateway.
    if (until <= this.#entries.now()) return false;
    this.#entries.add({ key, answer: deepFreeze(answer), tags, until });
    while (this.#entries.size > this.maxEntries) this.#entries.remove(this.#entries.first()!);
    return true;
  }

  /** Drops every entry carrying one of `tags`, and remembers the drop for fetches in flight. */
  drop(tags: Iterable<string>): void {
    this.#entries.change(tags, 0);
  }

  /** `drop`, and entries of `tags` fetched in the next `settleMs` live only until then. */
  settle(tags: Iterable<string>): void {
    this.#entries.change(tags, this.settleMs);
  }

  /** Empties the projection; nothing fetched before now may be stored. */
  clear(): void {
    this.#entries.clear();
  }

  /** Suspends (nothing served or stored) or resumes; empties the projection either way. */
  suspend(suspended: boolean): void {
    this.#entries.suspend(suspended);
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
