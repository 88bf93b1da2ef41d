/**
 * Request coalescing for the response cache (what Varnish and nginx's `proxy_cache_lock` do):
 * concurrent misses of one cache key share a single fetch from the service and its reply, so a
 * change that drops a popular page costs one bus request, not one per client waiting for it.
 * Only shareable requests come here (anonymous reads of shared routes), for which the same key
 * means the same answer. Each request still gets its own response (its own request id, its own
 * `If-None-Match`); a fetch that fails fails every request that shared it, with the same error.
 *
 * The rule that keeps a shared reply from being older than a request may see, in the cache's
 * own terms (gateway/cache.ts numbers every change it hears of: `begin()`):
 *
 * - A request that finds no fetch in flight starts one, which others may then join.
 * - A request that joins a fetch begun at mark `B` arrived at mark `A >= B`. If `A == B`, the
 *   cache heard of no change between the fetch's start and the request's arrival: the reply is
 *   as new as the request's own fetch would be, as a stored entry would. If `A > B`, a change
 *   came in between, and the reply may have been read before it: the request takes it only when
 *   `cache.fresh(tags, B)` (none of the reply's tags changed, nor was the cache emptied, since
 *   `B`: exactly what `store` asks), or when it is a server error (nothing stale to see there).
 *   Otherwise it fetches again.
 * - A fetch leaves the table before its reply is handed out, or another took its place there
 *   (below) after the request joined it: any fetch a refused request then finds began after the
 *   request arrived, and is taken as is.
 *   A request fetches at most twice.
 * - While the cache is suspended (it may be missing changes) nothing is shared.
 * - A fetch in flight for longer than JOIN_WAIT_MS takes no one more: the next request starts
 *   another in its place, which later ones join (nginx's `proxy_cache_lock_age`). A fetch whose
 *   bus request was lost (its instance killed while it read) answers only at the request timeout,
 *   a 504, and until 2026-12-06 every anonymous reader of that page shared it for all of that
 *   time, with healthy instances beside it: 76 of 76 readers of a topic list in 5 s (a scale-in
 *   review). Now only those who joined in its first JOIN_WAIT_MS do; a slow fetch costs at most
 *   one more per JOIN_WAIT_MS, each answering the requests that joined it.
 *
 * @example
 * ```ts ignore
 * const coalescer = new Coalescer(cache);
 * const reply = await coalescer.fetch(key, async (began) => await fetchAndStore(key, began));
 * ```
 */
import type { ResponseCache } from "./cache.ts";

/**
 * How long a fetch in flight is joined: far beyond a miss's usual time (milliseconds), far below
 * the request timeout a lost fetch runs to (5 s). Under overload, when admission may keep a miss
 * waiting up to half its deadline, a hot page gets a few more fetches, one per JOIN_WAIT_MS.
 */
export const JOIN_WAIT_MS = 500;

/** A reply as every request that shares it sends it. */
export interface SharedReply {
  status: number;
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  location?: string;
  etag?: string;
  /** `Retry-After` of a refusal (see ReplyParts). */
  retryAfter?: string;
  /** Its cache tags; undefined when it may not be cached (then it is not shared across a change). */
  tags?: readonly string[];
  /** Whether caches may share it (`public, no-cache`). */
  shared: boolean;
}

interface Flight {
  /** The cache's mark when the fetch began. */
  began: number;
  /** `performance.now()` when it began. */
  startedAt: number;
  reply: Promise<SharedReply>;
}

export class Coalescer {
  readonly #cache: ResponseCache;
  readonly #flights = new Map<string, Flight>();
  readonly #joinWaitMs: number;

  constructor(cache: ResponseCache, options: { joinWaitMs?: number } = {}) {
    this.#cache = cache;
    this.#joinWaitMs = options.joinWaitMs ?? JOIN_WAIT_MS;
  }

  /** Fetches in flight (for tests and metrics). */
  get size(): number {
    return this.#flights.size;
  }

  /**
   * The reply for `key`: from the fetch in flight when there is one this request may share,
   * else from `run`, which fetches (and stores) it as of mark `began`.
   */
  async fetch(key: string, run: (began: number) => Promise<SharedReply>): Promise<SharedReply> {
    const cache = this.#cache;
    if (cache.suspended) return await run(cache.begin());
    const arrived = cache.begin();
    const flight = this.#joinable(key);
    if (flight === undefined) return await this.#start(key, run).reply;
    const reply = await flight.reply;
    if (arrived === flight.began || reply.status >= 500) return reply;
    if (reply.tags !== undefined && cache.fresh(reply.tags, flight.began)) return reply;
    return await (this.#joinable(key) ?? this.#start(key, run)).reply;
  }

  /** The fetch of `key` in flight that a request may join: one begun JOIN_WAIT_MS ago at most. */
  #joinable(key: string): Flight | undefined {
    const flight = this.#flights.get(key);
    if (flight && performance.now() - flight.startedAt <= this.#joinWaitMs) return flight;
    return undefined;
  }

  #start(key: string, run: (began: number) => Promise<SharedReply>): Flight {
    const flight = { began: this.#cache.begin(), startedAt: performance.now() } as Flight;
    flight.reply = (async () => {
      try {
        return await run(flight.began);
      } finally {
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
      }
    })();
    this.#flights.set(key, flight);
    return flight;
  }
}
