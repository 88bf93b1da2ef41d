/**
 * The short way of cache hits. Once the full Hono path (metrics, request id, authentication,
 * media type, routing, the forward handler) has answered a request from the response cache,
 * the gateway remembers which cache key and route that exact raw request resolved to: the
 * method, the path with its raw query and the `Accept` header of an anonymous request (no
 * `Authorization`, no `Cookie`, no body). The next request that is the same on all of these
 * can only take the same way through the middlewares, so it is answered here: the entry is
 * looked up again (ResponseCache.lookup: invalidation, expiry and suspension apply), and the
 * response is built as the full path builds it — `cachedReply`, then `X-Request-Id` — with the
 * same metrics and access log line. Anything else (a miss, an unknown request) takes the full
 * path. On the gateway's hot reads this skips most of a hit's CPU (bench/hit_cpu.ts). Behind the
 * slow-client guard the relay goes one step further: `answerHead` answers a GET it read off the
 * wire with the bytes `Deno.serve` would have written, without the hop to it
 * (gateway/slow_clients.ts).
 *
 * @example
 * ```ts ignore
 * const hits = new HitPath({ cache, logger });
 * app.use("*", observeHttp({ onHit: (raw, hit) => hits.learn(raw, hit) }));
 * Deno.serve((request, info) => hits.answer(request) ?? app.fetch(request, info));
 * ```
 */
import type { Logger } from "@shared/log.ts";
import { tracing } from "@shared/telemetry.ts";
import type { ResponseCache } from "./cache.ts";
import { cachedReply, cachedReplyBytes } from "./http_cache.ts";
import type { RawHead } from "./raw_head.ts";
import { countAnswer, type HitRoute } from "./metrics.ts";
import { pickRequestId } from "./middleware/request_id.ts";
import { memoKey, plainTarget, RawMemo } from "./raw_memo.ts";

/**
 * Raw requests remembered at most, and their characters (long URLs); past either the memory
 * starts over. Kept small: it sits beside the response cache's byte budget.
 */
const MEMO_LIMIT = 10_000;
const MEMO_CHARS = 2_000_000;

/**
 * What decides the full path's answer to an anonymous read, as one string; undefined for a
 * request the short way never answers.
 */
function rawKey(raw: Request): string | undefined {
  const method = raw.method;
  if ((method !== "GET" && method !== "HEAD") || raw.headers.has("authorization")) return undefined;
  const target = plainTarget(raw);
  return target === undefined ? undefined : memoKey(method, target, raw.headers.get("accept"));
}

export class HitPath {
  readonly #cache: ResponseCache;
  readonly #logger: Logger;
  readonly #memo = new RawMemo<HitRoute>(MEMO_LIMIT, MEMO_CHARS);

  constructor(options: { cache: ResponseCache; logger: Logger }) {
    this.#cache = options.cache;
    this.#logger = options.logger;
  }

  /** Raw requests remembered now. */
  get size(): number {
    return this.#memo.size;
  }

  /** Remembers that the full path answered `raw` from the cache as `hit` says. */
  learn(raw: Request, hit: HitRoute): void {
    const key = rawKey(raw);
    if (key === undefined) return;
    this.#memo.remember(key, hit, key.length + hit.cacheKey.length + hit.path.length);
  }

  /**
   * The bytes of the answer to a GET read off the wire by the slow-client relay (to be written in
   * order), when a request like it was a hit and its entry is still live: what `answer` sends,
   * without a `Request`, a `Response` or the hop to `Deno.serve` (gateway/slow_clients.ts). Never
   * while tracing, so that every request keeps its server span.
   */
  answerHead(head: RawHead): Uint8Array[] | undefined {
    if (tracing || head.method !== "GET" || !head.plain) return undefined;
    const hit = this.#memo.get(memoKey("GET", head.target, head.accept ?? null));
    if (hit === undefined) return undefined;
    const entry = this.#cache.lookupBeforeFullPath(hit.cacheKey);
    if (entry === undefined) return undefined;
    const began = performance.now();
    const id = pickRequestId(head.requestId ?? null);
    const reply = cachedReplyBytes(entry, head.ifNoneMatch ?? null, id);
    this.#counted("GET", hit, reply.status, began, id);
    return reply.chunks;
  }

  /** The response to `raw` when a request like it was a hit and its entry is still live. */
  answer(raw: Request): Response | undefined {
    const key = rawKey(raw);
    if (key === undefined) return undefined;
    const hit = this.#memo.get(key);
    if (hit === undefined) return undefined;
    const entry = this.#cache.lookupBeforeFullPath(hit.cacheKey);
    if (entry === undefined) return undefined;
    const began = performance.now();
    const method = raw.method;
    const headers = raw.headers;
    const id = pickRequestId(headers.get("x-request-id"));
    let response = cachedReply(entry, headers.get("if-none-match"));
    response.headers.set("X-Request-Id", id);
    // Hono answers HEAD with the GET route's response, without its body (and with the length
    // that body has: middleware/head_length.ts).
    if (method === "HEAD") {
      if (response.status !== 304) {
        response.headers.set("Content-Length", String(entry.body.byteLength));
      }
      response = new Response(null, response);
    }
    this.#counted(method, hit, response.status, began, id);
    return response;
  }

  /** The metrics and access log line of an answer, as the full path's middlewares make them. */
  #counted(method: string, hit: HitRoute, status: number, began: number, requestId: string) {
    countAnswer(method, hit.route, status, began);
    this.#logger.info("request", {
      method,
      path: hit.path,
      status,
      ms: Math.round((performance.now() - began) * 10) / 10,
      requestId,
    });
  }
}
