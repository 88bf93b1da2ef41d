/**
 * The one route handler: forwards an HTTP request to a service endpoint on the bus and relays the
 * service's status, `Location` and body bytes untouched (decoding them only when another
 * service's resources must be merged into `included`). Anonymous reads of public routes are
 * answered from the response cache when it holds them (gateway/cache.ts), and concurrent misses
 * of one URL share one request to the service (gateway/coalesce.ts); every 200 read carries a
 * strong ETag and `If-None-Match` is answered 304 (gateway/http_cache.ts).
 */
import type { Context, Handler } from "hono";
import { routePath } from "hono/route";
import type { Bus, ForwardedReply } from "@shared/bus.ts";
import type { Endpoint } from "@shared/bus_endpoints.ts";
import type { Config } from "@shared/config.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor, HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import type { GatewayEnv } from "./env.ts";
import { mergeForeign, sparseFieldsOf } from "./includes.ts";
import { hasBody, readJsonBody, readTextBody } from "./middleware/body.ts";
import { JSONAPI } from "./middleware/media_type.ts";
import type { ResponseCache } from "./cache.ts";
import { announceTouched } from "./cache_invalidation.ts";
import { cachedReply, cacheKey, etagOf, httpReply, type WireParts } from "./http_cache.ts";
import { Coalescer, type SharedReply } from "./coalesce.ts";
import { asksSnapshot, noteSnapshot, serviceOf } from "./read_snapshots.ts";
import { collectionTag } from "@shared/cache_tags.ts";
import { numberPushedItems } from "@shared/query_filter.ts";
import { trashedAsked } from "@shared/handlers/guards.ts";
import {
  failedPrecondition,
  GatewayTimeoutError,
  malformedIdempotencyKey,
  type WritePrecondition,
} from "@shared/errors.ts";

export type HttpEndpoint = Endpoint<HttpRequest, HttpReply>;

export interface ForwardOptions {
  /** Content-Type of successful replies (default JSON:API); errors are always JSON:API. */
  contentType?: string;
  /**
   * Forward the body as received (`rawBody`) plus these request headers (lower case) instead
   * of parsing it: for webhooks whose signature covers the exact bytes.
   */
  raw?: { headers: readonly string[] };
  /** Anonymous GETs of this route may be shared (`sharedByCaches` of its contract). */
  shared?: boolean;
}

/** Makes the handler for one route; `fixedParams` are added to the path parameters. */
export type Forward = (
  endpoint: HttpEndpoint,
  fixedParams?: Record<string, string>,
  options?: ForwardOptions,
) => Handler<GatewayEnv>;

export interface ForwarderOptions {
  bus: Bus;
  config: Config;
  logger: Logger;
  /** The response cache; without one every read goes to its service. */
  cache?: ResponseCache;
  /**
   * Told of every signed-in GET forwarded (not a raw route's), with what it resolved to: for the
   * short way of signed-in reads (gateway/signed_path.ts).
   */
  onSignedRead?: (raw: Request, read: SignedRead) => void;
  /**
   * Told of every anonymous GET or HEAD of a shared route the full path answered from the cache,
   * with what it resolved to: for the short way of anonymous reads (gateway/hit_path.ts).
   */
  onSharedRead?: (raw: Request, read: SharedRead) => void;
}

/**
 * What the full path resolved a signed-in GET to: all it takes to forward the same read again
 * for another signed-in caller (the caller and the request id are the request's own).
 */
export interface SignedRead {
  endpoint: HttpEndpoint;
  params: Record<string, string>;
  path: string;
  query: Record<string, string>;
  /** Content-Type of successful replies. */
  successType: string;
  /** The Hono route pattern, as the metrics label it. */
  route: string;
}

/** Forwards a signed-in read again, as the full path would: the parts of its reply. */
export type ReadSigned = (read: SignedRead, actor: Actor, requestId: string) => Promise<WireParts>;

/**
 * What the full path resolved an anonymous read of a shared route to: all it takes to answer the
 * same read again, from the cache or from a fetch shared with concurrent misses.
 */
export interface SharedRead extends SignedRead {
  /** The response cache's key. */
  cacheKey: string;
}

/**
 * Answers an anonymous read of a shared route again after a cache miss, as the full path would:
 * from the fetch in flight for its key when it may share it, else from one it starts (and
 * stores). Counts no lookup: the caller looked the key up.
 */
export type ReadShared = (read: SharedRead, requestId: string) => Promise<SharedReply>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Query parameters, one value each: when a key repeats the first value counts, as in the original
 * (flask-rest-jsonapi read Flask's `request.args`, whose `get` and `items` give a key's first).
 * Names come in sorted order, the cache key's (http_cache.ts), since services write the query
 * back in the order they get it (`links`): a reply cached for `?sort=name&page[size]=5` was the
 * hit of `?page[size]=5&sort=name`, so one URL got other bytes and another ETag from each gateway,
 * depending on which spelling filled its cache (a review). The items of a filter's jQuery-style
 * array (`filter[0][val][]`, repeated) are numbered first, each kept (`numberPushedItems`).
 */
export function queryOf(url: string): Record<string, string> {
  const query: Record<string, string> = {};
  // A `?` after a `#` is the fragment's, never the query's (`/v1/events/7#?sort=x`).
  const hash = url.indexOf("#");
  const end = hash === -1 ? url.length : hash;
  const start = url.indexOf("?");
  if (start === -1 || start > end) return query;
  for (const [name, value] of numberPushedItems(new URLSearchParams(url.slice(start + 1, end)))) {
    if (!Object.hasOwn(query, name)) query[name] = value;
  }
  const sorted: Record<string, string> = {};
  for (const name of Object.keys(query).sort()) sorted[name] = query[name];
  return sorted;
}

/** A request that carries a credential is never answered from, nor stored in, the cache. */
function anonymous(raw: Request): boolean {
  return !raw.headers.has("authorization") && !raw.headers.has("cookie");
}

/**
 * The tags of what the gateway merged from other services: each resource by id, and the
 * collection of each foreign relationship (a code added to an event). Undefined when a
 * relationship's collection is unknown: such a reply is not cached.
 */
function foreignTags(reply: ForwardedReply): string[] | undefined {
  const tags: string[] = [];
  for (const [type, ids] of Object.entries(reply.foreignIncludes ?? {})) {
    for (const id of ids) tags.push(`${type}:${id}`);
  }
  for (const relation of reply.foreignRelations ?? []) {
    const collection = collectionTag(relation.relationship);
    if (collection === undefined) return undefined;
    tags.push(collection);
  }
  return tags;
}

/** What every route's handler shares: gathered once, when the forward factory is built. */
interface Forwarder {
  bus: Bus;
  logger: Logger;
  cache?: ResponseCache;
  /** Concurrent misses of one key share one fetch (with the cache only). */
  coalescer?: Coalescer;
  timeoutMs: number;
  limitBytes: number;
  bodyTimeoutMs: number;
  /** The bus request options of every read (one shared object). */
  requestOptions: { timeoutMs: number };
  /** Those of every write without an idempotency key (one shared object). */
  writeOptions: { timeoutMs: number; change: true };
  onSignedRead?: ForwarderOptions["onSignedRead"];
  onSharedRead?: ForwarderOptions["onSharedRead"];
}

/** What one route's handler knows of its route. */
interface Route {
  endpoint: HttpEndpoint;
  fixedParams: Record<string, string> | undefined;
  options: ForwardOptions;
  /** Content-Type of successful replies. */
  successType: string;
}

const writes = new Set(["POST", "PATCH", "DELETE"]);

/** `/v1/<collection>/{id}/relationships/<name>`: JSON:API's relationship routes answer linkage. */
const RELATIONSHIP_ROUTE = /^\/v1\/[^/]+\/[^/]+\/relationships\/[^/]+$/;

/**
 * Builds the `forward(endpoint, fixedParams?)` factory the route modules use, and `readSigned`,
 * which forwards a signed-in read the full path resolved before (gateway/signed_path.ts).
 *
 * @example
 * ```ts ignore
 * const { forward } = createForwarding({ bus, config, logger });
 * app.get("/v1/events/:id/tickets", forward(catalog.events.related, { rel: "tickets" }));
 * ```
 */
export function createForwarding(
  options: ForwarderOptions,
): { forward: Forward; readSigned: ReadSigned; readShared?: ReadShared } {
  const { requestTimeoutMs: timeoutMs, bodyLimitBytes, bodyTimeoutMs } = options.config;
  const forwarder: Forwarder = {
    bus: options.bus,
    logger: options.logger,
    cache: options.cache,
    coalescer: options.cache && new Coalescer(options.cache),
    timeoutMs,
    limitBytes: bodyLimitBytes,
    bodyTimeoutMs,
    requestOptions: { timeoutMs },
    writeOptions: { timeoutMs, change: true },
    onSignedRead: options.onSignedRead,
    onSharedRead: options.onSharedRead,
  };
  const { coalescer } = forwarder;
  return {
    forward(endpoint, fixedParams, forwardOptions = {}) {
      const successType = forwardOptions.contentType ?? JSONAPI;
      return routeHandler(forwarder, {
        endpoint,
        fixedParams,
        options: forwardOptions,
        successType,
      });
    },
    readSigned(read, actor, requestId) {
      const { params, path, query } = read;
      const request: HttpRequest = { actor, params, path, query, requestId, method: "GET" };
      return readParts(forwarder, read.endpoint, read.successType, request, false);
    },
    readShared: coalescer && ((read, requestId) => {
      const { params, path, query } = read;
      const request: HttpRequest = { actor: null, params, path, query, requestId, method: "GET" };
      return coalescer.fetch(
        read.cacheKey,
        (began) => fetchShared(forwarder, read, { request, key: read.cacheKey, began }),
      );
    }),
  };
}

/**
 * The handler of one route: answers an anonymous read of a shared route from the cache, or from
 * a fetch it shares with concurrent misses of the same key; forwards anything else.
 */
function routeHandler(forwarder: Forwarder, route: Route): Handler<GatewayEnv> {
  const { cache, coalescer } = forwarder;
  // Raw routes forward request headers, so one key need not mean one answer there.
  const sharedRoute = route.options.shared === true && route.options.raw === undefined;
  return async function forwardHandler(c) {
    const raw = c.req.raw;
    const method = raw.method;
    const query = queryOf(raw.url);
    // A read checking a write's preconditions needs its service's snapshot: never the cache.
    const shareable = sharedRoute && (method === "GET" || method === "HEAD") && anonymous(raw) &&
      !asksSnapshot(raw);
    if (!shareable || cache === undefined || coalescer === undefined) {
      return await forwarded(forwarder, route, c, query);
    }
    const key = cacheKey(route.successType, c.req.path, query);
    const hit = cache.lookup(key);
    if (hit) {
      // Told on a hit only: a URL read once (a crawler's) is never remembered, and does not
      // make the short way forget the popular ones.
      forwarder.onSharedRead?.(raw, {
        endpoint: route.endpoint,
        params: paramsOf(c, route.fixedParams),
        path: c.req.path,
        query,
        successType: route.successType,
        route: routePath(c, -1) || "*",
        cacheKey: key,
      });
      return cachedReply(hit, raw.headers.get("if-none-match"));
    }
    const reply = await coalescer.fetch(key, async (began) => {
      const request = await requestOf(forwarder, c, route.fixedParams, query, undefined);
      return await fetchShared(forwarder, route, { request, key, began });
    });
    return httpReply({ ...reply, cache: "MISS" }, raw.headers.get("if-none-match"));
  };
}

/**
 * Forwards a request that is not shared: a write (invalidating what it touched), a signed-in
 * read, any read without the cache; completes the reply with other services' resources.
 */
async function forwarded(
  forwarder: Forwarder,
  route: Route,
  c: Context<GatewayEnv>,
  query: Record<string, string>,
): Promise<Response> {
  const raw = c.req.raw;
  const method = raw.method;
  const request = await requestOf(forwarder, c, route.fixedParams, query, route.options.raw);
  const ifNoneMatch = raw.headers.get("if-none-match");
  if (method === "GET" || method === "HEAD") {
    if (method === "GET" && request.actor !== null && route.options.raw === undefined) {
      forwarder.onSignedRead?.(raw, {
        endpoint: route.endpoint,
        params: request.params,
        path: request.path,
        query,
        successType: route.successType,
        route: routePath(c, -1) || "*",
      });
    }
    const shared = route.options.shared === true && anonymous(raw);
    const parts = await readParts(forwarder, route.endpoint, route.successType, request, shared, {
      snapshotFor: request.snapshotAsked ? raw : undefined,
    });
    return httpReply(parts, ifNoneMatch);
  }
  const preconditionFailed = c.get("preconditionFailed");
  const since = c.get("unchangedSince");
  // Only the service that answered the read can compare its snapshot (its own database's).
  if (since && since.service === serviceOf(route.endpoint.subject)) {
    request.unchangedSince = { snapshot: since.snapshot, header: since.header };
  }
  return httpReply(
    await writeParts(forwarder, route, raw, request, preconditionFailed),
    ifNoneMatch,
  );
}

/**
 * Forwards a read and completes its reply: the parts `httpReply` answers with (`shared`: the
 * route may be shared and the request is anonymous).
 */
async function readParts(
  forwarder: Forwarder,
  endpoint: HttpEndpoint,
  successType: string,
  request: HttpRequest,
  shared: boolean,
  options: { snapshotFor?: Request } = {},
): Promise<WireParts> {
  const deadline = Date.now() + forwarder.timeoutMs;
  const reply = await forwarder.bus.forward(endpoint, request, forwarder.requestOptions);
  if (options.snapshotFor) {
    noteSnapshot(options.snapshotFor, serviceOf(endpoint.subject), reply.snapshot);
  }
  const { body } = await completed(forwarder, reply, { request, deadline }, undefined);
  return {
    status: reply.status,
    body,
    contentType: reply.status >= 400 ? JSONAPI : successType,
    location: reply.location,
    etag: reply.status === 200 ? etagOf(body) : undefined,
    retryAfter: reply.retryAfter,
    shared: shared && reply.cacheTags !== undefined,
  };
}

/** Forwards a write, drops what it touched from the caches, and completes its reply. */
async function writeParts(
  forwarder: Forwarder,
  route: Route,
  raw: Request,
  request: HttpRequest,
  preconditionFailed: WritePrecondition | undefined,
): Promise<WireParts> {
  const { bus, cache, timeoutMs, writeOptions } = forwarder;
  // A retry-safe write: the owning service keeps the key (shared/idempotency.ts).
  const idempotencyKey = writes.has(raw.method) ? raw.headers.get("idempotency-key") : null;
  // An empty key is a client's mistake, not "no key": the write would run unprotected. The
  // owning service checks the rest of a key's form.
  if (idempotencyKey === "") throw malformedIdempotencyKey();
  // Only the key's owner can tell a retry from a stale write; without a key it is stale.
  if (preconditionFailed && idempotencyKey === null) throw failedPrecondition(preconditionFailed);
  const deadline = Date.now() + timeoutMs;
  const reply = await bus.forward(
    route.endpoint,
    request,
    idempotencyKey === null
      ? writeOptions
      : { timeoutMs, idempotencyKey, preconditionFailed, change: true },
  );
  // A client reads its own writes: what the write touched goes before its reply does.
  if (reply.cacheTags && reply.status < 300) {
    cache?.invalidate(reply.cacheTags);
    announceTouched(bus, reply.cacheTags, cache);
  }
  const { body } = await completedWrite(forwarder, reply, { request, deadline });
  return {
    status: reply.status,
    body,
    contentType: reply.status >= 400 ? JSONAPI : route.successType,
    location: reply.location,
    retryAfter: reply.retryAfter,
    shared: false,
  };
}

/** The request forwarded, and when the client's answer is due (REQUEST_TIMEOUT_MS after it). */
interface Asked {
  request: HttpRequest;
  deadline: number;
}

/** What the fetch of a shareable read needs besides its route. */
interface SharedFetch {
  request: HttpRequest;
  key: string;
  /** The cache's mark when the fetch began (see ResponseCache.begin). */
  began: number;
}

/**
 * Fetches an anonymous read of a shared route (for every request coalesced with it), and
 * stores the reply when it may be cached.
 */
async function fetchShared(
  forwarder: Forwarder,
  route: { endpoint: HttpEndpoint; successType: string },
  { request, key, began }: SharedFetch,
): Promise<SharedReply> {
  const deadline = Date.now() + forwarder.timeoutMs;
  // What the reply shows is read from now on: its settle windows and its age start here.
  const askedAt = forwarder.cache!.now();
  const reply = await forwarder.bus.forward(route.endpoint, request, forwarder.requestOptions);
  const contentType = reply.status >= 400 ? JSONAPI : route.successType;
  const { body, tags } = await completed(forwarder, reply, { request, deadline }, reply.cacheTags);
  const etag = reply.status === 200 ? etagOf(body) : undefined;
  if (tags !== undefined) {
    // A copy: the payload may be a view into a larger buffer the cache must not pin.
    const entry = { status: reply.status, contentType, body: body.slice(), etag: etag ?? "" };
    forwarder.cache!.store(key, { ...entry, tags, expires: reply.cacheExpires }, began, askedAt);
  }
  return {
    status: reply.status,
    body,
    contentType,
    location: reply.location,
    etag,
    tags,
    retryAfter: reply.retryAfter,
    shared: reply.cacheTags !== undefined,
  };
}

/** The route's path parameters, with the fixed ones its module adds. */
function paramsOf(
  c: Context<GatewayEnv>,
  fixedParams: Record<string, string> | undefined,
): Record<string, string> {
  return fixedParams ? { ...c.req.param(), ...fixedParams } : c.req.param();
}

/** The bus request for an HTTP request: caller, parameters, query and body. */
async function requestOf(
  forwarder: Forwarder,
  c: Context<GatewayEnv>,
  fixedParams: Record<string, string> | undefined,
  query: Record<string, string>,
  raw: ForwardOptions["raw"],
): Promise<HttpRequest> {
  const { limitBytes, bodyTimeoutMs } = forwarder;
  const request: HttpRequest = {
    actor: c.get("actor") ?? null,
    params: paramsOf(c, fixedParams),
    path: c.req.path,
    query,
    requestId: c.get("requestId"),
    method: c.req.raw.method,
  };
  if (asksSnapshot(c.req.raw)) request.snapshotAsked = true;
  const method = request.method;
  if (raw) {
    request.rawBody = await readTextBody(c.req.raw, limitBytes, bodyTimeoutMs);
    request.headers = {};
    for (const name of raw.headers) {
      const value = c.req.raw.headers.get(name);
      if (value !== null) request.headers[name] = value;
    }
  } else if (
    method === "POST" || method === "PATCH" || (method === "DELETE" && hasBody(c.req.raw))
  ) {
    request.body = await readJsonBody(c.req.raw, limitBytes, bodyTimeoutMs);
  }
  return request;
}

/**
 * A write's answer, completed like a read's; but the write happened, so when another service
 * cannot give what `include` asked of it (down, late, or refusing it), the answer is the write's
 * own, without those resources, and `meta.include-unavailable` says why; never the error: a 503
 * there told clients that an applied write had failed (a retry without Idempotency-Key made it
 * twice).
 */
async function completedWrite(
  forwarder: Forwarder,
  reply: ForwardedReply,
  asked: Asked,
): Promise<{ body: Uint8Array<ArrayBuffer> }> {
  try {
    return await completed(forwarder, reply, asked, undefined);
  } catch (error) {
    forwarder.logger.warn("answering a write without the included resources of another service", {
      requestId: asked.request.requestId,
      reason: (error as Error).message,
    });
    return { body: withoutForeign(reply.body, (error as Error).message) };
  }
}

/** The service's document, saying in `meta` why what another service owns is missing. */
function withoutForeign(body: Uint8Array, reason: string): Uint8Array<ArrayBuffer> {
  const document = JSON.parse(decoder.decode(body)) as { meta?: Record<string, unknown> };
  document.meta = {
    ...document.meta,
    "include-unavailable": `The change is done; what another service owns is not included ` +
      `(${reason}): read the resource again with include.`,
  };
  return encoder.encode(JSON.stringify(document));
}

/**
 * The reply's body, completed with other services' resources when it needs them, and its
 * cache tags with theirs (undefined when it may not be cached).
 */
async function completed(
  forwarder: Forwarder,
  reply: ForwardedReply,
  { request, deadline }: Asked,
  tags: string[] | undefined,
): Promise<{ body: Uint8Array<ArrayBuffer>; tags?: string[] }> {
  // NATS payloads live in plain ArrayBuffers, so the bytes go out without a copy.
  const body = reply.body as Uint8Array<ArrayBuffer>;
  const foreign = reply.foreignIncludes || reply.foreignRelations;
  if (!foreign || reply.status >= 300 || !reply.body.length) return { body, tags };
  const { bus, logger } = forwarder;
  // What the request has left of its REQUEST_TIMEOUT_MS: a fresh timeout here let an answer
  // with includes take twice as long (found by a review: 3.7 s with a 2 s timeout).
  const timeoutMs = deadline - Date.now();
  if (timeoutMs <= 0) {
    throw new GatewayTimeoutError("Cannot include what other services own: no time is left");
  }
  const merged = await mergeForeign(reply.body, {
    includes: reply.foreignIncludes,
    relations: reply.foreignRelations,
  }, {
    bus,
    actor: request.actor,
    timeoutMs,
    logger,
    fields: sparseFieldsOf(request.query),
    linkage: RELATIONSHIP_ROUTE.test(request.path),
    // As the owner of the primary data read it (admins only: each owner checks).
    trashed: trashedAsked(request.query),
  });
  const more = tags && foreignTags(reply);
  return { body: encoder.encode(merged), tags: more && [...tags!, ...more] };
}
