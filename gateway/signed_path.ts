/**
 * The short way of signed-in reads. Signed-in reads are never cached, so each one goes to its
 * service; but the gateway's own part of one is the same every time: once the full path (metrics,
 * request id, authentication, media type, routing, the forward handler) has forwarded a
 * signed-in GET, the gateway remembers what that exact raw request resolved to (the method, the
 * path with its raw query and `Accept`: gateway/forward.ts's `SignedRead`). The next such GET
 * that the slow-client relay reads off the wire as one plain head with one `Authorization`
 * (gateway/raw_head.ts), with a token verified before and not expired (middleware/auth.ts's
 * `TokenVerifier`), is forwarded from here: the same bus request for its own caller and request
 * id, the same completion with other services' resources, and the bytes `Deno.serve` would have
 * written for the full path's response (errors too), with the same metrics and access log line.
 * It skips the hop to `Deno.serve`, Hono and the middlewares: most of the gateway's CPU on a
 * signed-in read, most of it in garbage collection of what they allocate (bench/FINDINGS.md).
 * Without the relay (HEADER_TIMEOUT_MS=0) `answer` does the same for the `Request` `Deno.serve`
 * hands over, before Hono, with the `Response` the full path makes.
 * Anything else (an unknown request, a token not verified yet or expired, HEAD, a body, a
 * cookie) takes the full path, which decides and says why it refuses. Never while tracing, so
 * that every request keeps its server span.
 *
 * @example
 * ```ts ignore
 * const { forward, readSigned } = createForwarding({ ..., onSignedRead: (raw, read) => signed.learn(raw, read) });
 * const signed = new SignedPath({ read: readSigned, verifier, logger });
 * await serveGuarded({ ..., answer: (head) => signed.answerHead(head) }, app.fetch);
 * ```
 */
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";
import { tracing } from "@shared/telemetry.ts";
import type { ApiError } from "@shared/errors.ts";
import { apiErrorOf, errorBytes, errorResponse } from "./errors.ts";
import type { ReadSigned, SignedRead } from "./forward.ts";
import { httpReply, replyBytes, type WireParts } from "./http_cache.ts";
import { countAnswer, countInFlight } from "./metrics.ts";
import type { TokenVerifier } from "./middleware/auth.ts";
import { withCorsHeaders } from "./middleware/cors.ts";
import { accessLine, pickRequestId } from "./middleware/request_id.ts";
import { memoKey, plainTarget, RawMemo } from "./raw_memo.ts";
import { MAX_HEAD_BYTES, type RawHead } from "./raw_head.ts";

/**
 * Raw requests remembered at most, and their characters (long URLs and queries); past either the
 * memory starts over (each URL then takes the full path once). Smaller than the short way of
 * hits' memory: this one is not part of the response cache's byte budget, and about a megabyte
 * at most keeps the gateway's memory within CACHE_MAX_BYTES + 64 MiB.
 */
const MEMO_LIMIT = 2_000;
const MEMO_CHARS = 400_000;

/**
 * The key of a raw signed-in GET the full path forwarded; undefined for one the short way never
 * answers.
 */
function rawKey(raw: Request): string | undefined {
  if (raw.method !== "GET" || !raw.headers.has("authorization")) return undefined;
  const target = plainTarget(raw);
  return target === undefined ? undefined : memoKey("GET", target, raw.headers.get("accept"));
}

export interface SignedPathOptions {
  /** Forwards a read again (gateway/forward.ts's `createForwarding`). */
  read: ReadSigned;
  /** The tokens the full path verified. */
  verifier: TokenVerifier;
  logger: Logger;
}

export class SignedPath {
  readonly #read: ReadSigned;
  readonly #verifier: TokenVerifier;
  readonly #logger: Logger;
  readonly #memo = new RawMemo<SignedRead>(MEMO_LIMIT, MEMO_CHARS);

  constructor(options: SignedPathOptions) {
    this.#read = options.read;
    this.#verifier = options.verifier;
    this.#logger = options.logger;
  }

  /** Raw requests remembered now. */
  get size(): number {
    return this.#memo.size;
  }

  /** Remembers what the full path resolved the signed-in GET `raw` to. */
  learn(raw: Request, read: SignedRead): void {
    const key = rawKey(raw);
    // A key longer than the relay's longest head is never asked for: remembered, a few URLs of
    // up to 64 KiB (Deno.serve takes them) made the memory start over for every caller.
    if (key === undefined || key.length > MAX_HEAD_BYTES) return;
    const chars = key.length + read.path.length + JSON.stringify(read.query).length;
    this.#memo.remember(key, read, chars);
  }

  /**
   * The answer's bytes (to be written in order) to a GET read off the wire by the slow-client
   * relay, when a request like it was forwarded by the full path and its token is known; else
   * undefined, and the full path answers.
   */
  answerHead(head: RawHead): Promise<Uint8Array[]> | undefined {
    if (tracing || head.method !== "GET" || !head.signed) return undefined;
    const read = this.#memo.get(memoKey("GET", head.target, head.accept ?? null));
    if (read === undefined) return undefined;
    const actor = this.#verifier.knownActor(head.authorization!);
    if (actor === undefined) return undefined;
    const ifNoneMatch = head.ifNoneMatch ?? null;
    return this.#answer(read, actor, head.requestId ?? null, {
      reply: (parts, id) => replyBytes(parts, ifNoneMatch, id),
      error: (error, id) => errorBytes(error, id),
    }).then((reply) => reply.chunks);
  }

  /**
   * The response to a GET `Deno.serve` handed over, when a request like it was forwarded by the
   * full path and its token is known; else undefined. The short way where no relay reads the wire
   * (HEADER_TIMEOUT_MS=0), or where it did not take the request (a head split over two reads).
   */
  answer(raw: Request): Promise<Response> | undefined {
    if (tracing) return undefined;
    const key = rawKey(raw);
    const read = key === undefined ? undefined : this.#memo.get(key);
    if (read === undefined) return undefined;
    const headers = raw.headers;
    const actor = this.#verifier.knownActor(headers.get("authorization")!);
    if (actor === undefined) return undefined;
    const ifNoneMatch = headers.get("if-none-match");
    return this.#answer(read, actor, headers.get("x-request-id"), {
      reply: (parts, id) => identified(httpReply(parts, ifNoneMatch), id),
      error: (error, id) => {
        const response = errorResponse(error);
        withCorsHeaders(response.headers);
        return identified(response, id);
      },
    });
  }

  /**
   * Forwards `read` for `actor` and renders the reply (or the error) as the full path would,
   * counted and logged as its middlewares do.
   */
  async #answer<T extends { status: number }>(
    read: SignedRead,
    actor: Actor,
    requestIdHeader: string | null,
    render: {
      reply: (parts: WireParts, requestId: string) => T;
      error: (error: ApiError, requestId: string) => T;
    },
  ): Promise<T> {
    const began = performance.now();
    const requestId = pickRequestId(requestIdHeader);
    countInFlight(1);
    let answer: T;
    try {
      answer = render.reply(await this.#read(read, actor, requestId), requestId);
    } catch (error) {
      const fields = { requestId, method: "GET", path: read.path };
      answer = render.error(apiErrorOf(error, this.#logger, fields), requestId);
    } finally {
      countInFlight(-1);
    }
    countAnswer("GET", read.route, answer.status, began);
    this.#logger.info("request", accessLine("GET", read.path, answer.status, began, requestId));
    return answer;
  }
}

/** `response` with the request id the full path's middleware sets last. */
function identified(response: Response, requestId: string): Response {
  response.headers.set("X-Request-Id", requestId);
  return response;
}
