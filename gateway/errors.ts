/**
 * The gateway's single error seam: every failure, whether thrown by our middleware, relayed from
 * the bus, raised by Hono or unexpected, leaves as a JSON:API error document.
 */
import type { Context, ErrorHandler, Handler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import {
  ApiError,
  BadRequestError,
  errorDocumentOf,
  errorFromObjects,
  InternalError,
  MethodNotAllowedError,
  NotFoundError,
} from "@shared/errors.ts";
import type { Logger } from "@shared/log.ts";
import type { GatewayEnv } from "./env.ts";
import { JSONAPI } from "./middleware/media_type.ts";
import { PRIVATE, type WireReply, wireReply } from "./http_cache.ts";
import { CHALLENGE } from "./middleware/auth.ts";
import { CORS_HEADERS } from "./middleware/cors.ts";

function errorDocument(error: ApiError): string {
  return JSON.stringify(errorDocumentOf(error.toObjects()));
}

/** The headers every error answer starts with: a 401 says how to authenticate (RFC 9110). */
function errorHeaders(error: ApiError): Record<string, string> {
  const headers: Record<string, string> = { "Content-Type": JSONAPI, "Cache-Control": PRIVATE };
  if (error.status === 401) headers["WWW-Authenticate"] = CHALLENGE;
  return headers;
}

/**
 * A JSON:API error response for `error`, with any extra headers (which replace the defaults: the
 * metrics endpoint's own challenge).
 */
export function errorResponse(error: ApiError, headers: Record<string, string> = {}): Response {
  return new Response(errorDocument(error), {
    status: error.status,
    // The gateway's own errors (401, 404 of no route, 405, 406, 408, 413, 415, 5xx) are never
    // for a cache to keep: some depend on the credential, and 404 and 405 are otherwise
    // heuristically cacheable.
    headers: { ...errorHeaders(error), ...headers },
  });
}

const encoder = new TextEncoder();

/**
 * The bytes `Deno.serve` writes for `errorResponse(error)` once the CORS headers and
 * `X-Request-Id` were added (middleware/cors.ts, middleware/request_id.ts): for answers the
 * slow-client relay sends itself (gateway/signed_path.ts, gateway/slow_clients.ts), with any
 * `extra` headers after the CORS ones.
 */
export function errorBytes(
  error: ApiError,
  requestId: string,
  extra: Record<string, string> = {},
): WireReply {
  const headers = { ...errorHeaders(error), ...CORS_HEADERS, ...extra };
  return wireReply(error.status, headers, requestId, encoder.encode(errorDocument(error)));
}

/** Hono's own exceptions (for example from its helpers) mapped onto our classes by status. */
function fromHttpException(exception: HTTPException): ApiError {
  // errorFromObjects picks the class (and so code and title) by status; unknown ones become 500.
  return errorFromObjects([{
    status: String(exception.status),
    code: "",
    title: "",
    detail: "Cannot process the request",
  }]);
}

function requestFields(c: Context<GatewayEnv>) {
  return { requestId: c.get("requestId"), method: c.req.method, path: c.req.path };
}

/**
 * The API error a failure is answered with: API errors as they are (a 5xx logged as a warning),
 * Hono's exceptions by status, anything else a generic 500 whose name and message go only to the
 * log (stack traces stay out of logs as well as responses), next to the request's `fields`.
 */
export function apiErrorOf(
  error: unknown,
  log: Logger,
  fields: { requestId: string; method: string; path: string },
): ApiError {
  if (error instanceof ApiError) {
    if (error.status >= 500) log.warn(error.message, fields);
    return error;
  }
  if (error instanceof HTTPException) return fromHttpException(error);
  log.error("request failed", {
    ...fields,
    errorName: (error as Error | undefined)?.name,
    errorMessage: (error as Error | undefined)?.message,
  });
  return new InternalError("The server could not complete the request");
}

/**
 * `Deno.serve`'s `onError`: a failure before the app's handler runs, which no middleware sees.
 * With OTEL_DENO, Deno's telemetry builds the request's URL from its Host before the handler, and
 * a Host no URL can hold (`[`, `a:b:c`, `x:99999`) threw there: Deno's default printed its stack to
 * stderr and answered a plain-text 500, with no access line (an observability review, 2026-12-05).
 * Such a request gets the 400 the app gives it without telemetry (middleware/host.ts) and the
 * access line, as far as it can be known; anything else a JSON:API 500, logged as one line.
 */
export function serveErrors(log: Logger): (error: unknown) => Response {
  return (error) => {
    const requestId = crypto.randomUUID();
    const unreadableUrl = error instanceof TypeError && error.message.startsWith("Invalid URL");
    const apiError = unreadableUrl
      ? new BadRequestError("Cannot read the Host header: it is not a host name or address", {
        header: "Host",
      })
      : apiErrorOf(error, log, { requestId, method: "", path: "" });
    log.info("request", { status: apiError.status, requestId, beforeTheApp: true });
    return errorResponse(apiError, { ...CORS_HEADERS, "X-Request-Id": requestId });
  };
}

/**
 * The `app.onError` handler: API errors keep their status; anything else is a generic 500 whose
 * details go only to the log, next to the request id a client can quote.
 *
 * @example
 * ```ts ignore
 * app.onError(onError({ logger }));
 * ```
 */
export function onError(options: { logger: Logger }): ErrorHandler<GatewayEnv> {
  const log = options.logger;
  return function handleError(error, c) {
    return errorResponse(apiErrorOf(error, log, requestFields(c)));
  };
}

/**
 * The `app.notFound` handler. It also answers `OPTIONS *`, which asks what the server allows
 * (RFC 9110 §9.3.7): 204 with `Allow` of every method the server's routes have (`serverMethods`),
 * as `OPTIONS` on a path answers for that path. `Deno.serve` gives the target `*` the URL of the
 * path `/*` (an origin-form `/*` gets the same, and no route has that path), so no route could be
 * registered for it: `/*` is Hono's wildcard. Until 2026-12-05 `OPTIONS *` was this 404.
 */
export function notFound(serverMethods: readonly string[]): NotFoundHandler<GatewayEnv> {
  const serverAllow = allowOf(serverMethods);
  return function handleNotFound(c) {
    if (c.req.method === "OPTIONS" && c.req.path === "/*") return optionsReply(serverAllow);
    return errorResponse(new NotFoundError(`Cannot find ${c.req.path}: no such route`));
  };
}

/**
 * The `Allow` value of a path served with `methods`: those, `HEAD` wherever `GET` is (Hono
 * answers it with the GET route), and `OPTIONS`, which every such path answers (`options`).
 */
function allowOf(methods: readonly string[]): string {
  const allowed = [...methods];
  if (allowed.includes("GET") && !allowed.includes("HEAD")) allowed.push("HEAD");
  if (!allowed.includes("OPTIONS")) allowed.push("OPTIONS");
  return allowed.join(", ");
}

/**
 * Answers 405 with an `Allow` header for a path that exists with other methods. A HEAD is answered
 * as its GET, whose body it does not get (RFC 9110 §9.3.2): the document names GET, so that the
 * `Content-Length` the HEAD gets is the GET body's (until 2026-12-05 it said `Cannot HEAD`, a
 * byte longer).
 */
export function methodNotAllowed(methods: readonly string[]): Handler<GatewayEnv> {
  const allow = allowOf(methods);
  return function handleMethodNotAllowed(c) {
    const method = c.req.method === "HEAD" ? "GET" : c.req.method;
    return errorResponse(
      new MethodNotAllowedError(`Cannot ${method} ${c.req.path}: allowed are ${allow}`),
      { Allow: allow },
    );
  };
}

/**
 * Answers an `OPTIONS` request that is no CORS preflight (middleware/cors.ts answers those) with
 * what the path allows (RFC 9110 §9.3.7): 204 and `Allow`. Until 2026-12-04 it was a 405 whose
 * `Allow` left OPTIONS out.
 */
export function answerOptions(methods: readonly string[]): Handler<GatewayEnv> {
  const allow = allowOf(methods);
  return function handleOptions() {
    return optionsReply(allow);
  };
}

/** The answer to an `OPTIONS` that is no preflight: 204 and what is allowed. */
function optionsReply(allow: string): Response {
  return new Response(null, { status: 204, headers: { Allow: allow, "Cache-Control": PRIVATE } });
}
