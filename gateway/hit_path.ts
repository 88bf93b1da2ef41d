/**
 * The short way of anonymous reads. Once the full Hono path (metrics, request id, authentication,
 * media type, routing, the forward handler) has answered an anonymous read of a shared route from
 * the response cache, the gateway remembers what that exact raw request resolved to
 * (gateway/forward.ts's `SharedRead`): the method, the path with its raw query and the `Accept`
 * header of a request without `Authorization`, `Cookie` or body. The next request that is the same
 * on all of these can only take the same way through the middlewares, so it is answered here: the
 * entry is looked up again (ResponseCache.lookup: invalidation, expiry and suspension apply), and
 * the response is built as the full path builds it — `cachedReply`, then `X-Request-Id` — with the
 * same metrics and access log line. Anything else (an unknown request) takes the full path. On the
 * gateway's hot reads this skips most of a hit's CPU (bench/hit_cpu.ts). Behind the slow-client
 * guard the relay goes one step further: `answerHead` answers a GET it read off the wire with the
 * bytes `Deno.serve` would have written, without the hop to it (gateway/slow_clients.ts), and on a
 * miss it fetches the reply itself, through the same coalescing fetch the full path's handler uses
 * (`ReadShared`): until 2026-12-03, after a change dropped a popular page, the requests waiting for
 * it each took the hop to `Deno.serve`, Hono and the middlewares, a miss costing the gateway
 * several times a hit (the mixed load's misses, bench/FINDINGS.md, 2026-12-03).
 *
 * @example
 * ```ts ignore
 * const onSharedRead = (raw: Request, read: SharedRead) => hits.learn(raw, read);
 * const { readShared } = createForwarding({ ..., onSharedRead });
 * const hits = new HitPath({ cache, read: readShared, logger });
 * Deno.serve((request, info) => hits.answer(request) ?? app.fetch(request, info));
 * ```
 */
import type { Logger } from "@shared/log.ts";
import { tracing } from "@shared/telemetry.ts";
import type { ResponseCache } from "./cache.ts";
import { apiErrorOf, errorBytes } from "./errors.ts";
import type { ReadShared, SharedRead } from "./forward.ts";
import { cachedReply, cachedReplyBytes, replyBytes } from "./http_cache.ts";
import type { RawHead } from "./raw_head.ts";
import { countAnswer, countInFlight } from "./metrics.ts";
import { accessLine, pickRequestId } from "./middleware/request_id.ts";
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
  readonly #read: ReadShared;
  readonly #logger: Logger;
  readonly #memo = new RawMemo<SharedRead>(MEMO_LIMIT, MEMO_CHARS);

  /** `read` answers the misses of `answerHead`. */
  constructor(options: { cache: ResponseCache; read: ReadShared; logger: Logger }) {
    this.#cache = options.cache;
    this.#read = options.read;
    this.#logger = options.logger;
  }

  /** Raw requests remembered now. */
  get size(): number {
    return this.#memo.size;
  }

  /** Remembers what the full path resolved the anonymous read `raw`, a hit, to. */
  learn(raw: Request, read: SharedRead): void {
    const key = rawKey(raw);
    if (key === undefined) return;
    // Told again for each hit the full path answers (a HEAD, or without the relay): a request
    // known already costs a lookup only.
    if (this.#memo.get(key)?.cacheKey === read.cacheKey) return;
    const chars = key.length + read.cacheKey.length + read.path.length +
      JSON.stringify(read.query).length + JSON.stringify(read.params).length;
    this.#memo.remember(key, read, chars);
  }

  /**
   * The bytes of the answer to a GET read off the wire by the slow-client relay (to be written in
   * order), when a request like it was a hit and its entry is still live: what `answer` sends,
   * without a `Request`, a `Response` or the hop to `Deno.serve` (gateway/slow_clients.ts). Never
   * while tracing, so that every request keeps its server span.
   */
  answerHead(head: RawHead): Uint8Array[] | Promise<Uint8Array[]> | undefined {
    if (tracing || head.method !== "GET" || !head.plain) return undefined;
    const read = this.#memo.get(memoKey("GET", head.target, head.accept ?? null));
    if (read === undefined) return undefined;
    // Counted here, hit or miss: a miss is fetched here too, and never reaches the full path.
    const entry = this.#cache.lookup(read.cacheKey);
    if (entry === undefined) return this.#missed(read, head);
    const began = performance.now();
    const id = pickRequestId(head.requestId ?? null);
    const reply = cachedReplyBytes(entry, head.ifNoneMatch ?? null, id);
    this.#counted("GET", read, reply.status, began, id);
    return reply.chunks;
  }

  /**
   * The bytes of the answer to a GET whose entry is missing, as the full path's handler answers a
   * miss: the shared fetch's reply (`X-Cache: MISS`), or its error.
   */
  async #missed(read: SharedRead, head: RawHead): Promise<Uint8Array[]> {
    const began = performance.now();
    const id = pickRequestId(head.requestId ?? null);
    countInFlight(1);
    let reply;
    try {
      const shared = await this.#read(read, id);
      reply = replyBytes({ ...shared, cache: "MISS" }, head.ifNoneMatch ?? null, id);
    } catch (error) {
      const fields = { requestId: id, method: "GET", path: read.path };
      reply = errorBytes(apiErrorOf(error, this.#logger, fields), id);
    } finally {
      countInFlight(-1);
    }
    this.#counted("GET", read, reply.status, began, id);
    return reply.chunks;
  }

  /** The response to `raw` when a request like it was a hit and its entry is still live. */
  answer(raw: Request): Response | undefined {
    const key = rawKey(raw);
    if (key === undefined) return undefined;
    const read = this.#memo.get(key);
    if (read === undefined) return undefined;
    const entry = this.#cache.lookupBeforeFullPath(read.cacheKey);
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
    this.#counted(method, read, response.status, began, id);
    return response;
  }

  /** The metrics and access log line of an answer, as the full path's middlewares make them. */
  #counted(method: string, read: SharedRead, status: number, began: number, requestId: string) {
    countAnswer(method, read.route, status, began);
    this.#logger.info("request", accessLine(method, read.path, status, began, requestId));
  }
}
