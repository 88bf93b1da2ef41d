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
 * - A fetch leaves the table before its reply is handed out, so any fetch a refused request
 *   then finds began after that reply arrived, hence after the request did: it is taken as is.
 *   A request fetches at most twice.
 * - While the cache is suspended (it may be missing changes) nothing is shared.
 *
 * @example
 * ```ts ignore
 * const coalescer = new Coalescer(cache);
 * const reply = await coalescer.fetch(key, async (began) => await fetchAndStore(key, began));
 * ```
 */
import type { ResponseCache } from "./cache.ts";

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
  reply: Promise<SharedReply>;
}

export class Coalescer {
  readonly #cache: ResponseCache;
  readonly #flights = new Map<string, Flight>();

  constructor(cache: ResponseCache) {
    this.#cache = cache;
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
    const flight = this.#flights.get(key);
    if (flight === undefined) return await this.#start(key, run).reply;
    const reply = await flight.reply;
    if (arrived === flight.began || reply.status >= 500) return reply;
    if (reply.tags !== undefined && cache.fresh(reply.tags, flight.began)) return reply;
    return await (this.#flights.get(key) ?? this.#start(key, run)).reply;
  }

  #start(key: string, run: (began: number) => Promise<SharedReply>): Flight {
    const flight = { began: this.#cache.begin() } as Flight;
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
