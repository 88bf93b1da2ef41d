/**
 * The one route handler: forwards an HTTP request to a service endpoint on the bus and relays the
 * service's status, `Location` and body bytes untouched (decoding them only when another
 * service's resources must be merged into `included`).
 */
import type { Handler } from "hono";
import type { Bus, Endpoint } from "@shared/bus.ts";
import type { Config } from "@shared/config.ts";
import type { Logger } from "@shared/log.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import type { GatewayEnv } from "./env.ts";
import { mergeForeign, sparseFieldsOf } from "./includes.ts";
import { hasBody, readJsonBody, readTextBody } from "./middleware/body.ts";
import { JSONAPI } from "./middleware/media_type.ts";

export type HttpEndpoint = Endpoint<HttpRequest, HttpReply>;

export interface ForwardOptions {
  /** Content-Type of successful replies (default JSON:API); errors are always JSON:API. */
  contentType?: string;
  /**
   * Forward the body as received (`rawBody`) plus these request headers (lower case) instead
   * of parsing it: for webhooks whose signature covers the exact bytes.
   */
  raw?: { headers: readonly string[] };
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
}

/** Query parameters, one value each: when a key repeats the last value wins (as in the original). */
export function queryOf(url: string): Record<string, string> {
  const query: Record<string, string> = {};
  const start = url.indexOf("?");
  if (start === -1) return query;
  const hash = url.indexOf("#", start);
  for (
    const [name, value] of new URLSearchParams(url.slice(start + 1, hash === -1 ? undefined : hash))
  ) {
    query[name] = value;
  }
  return query;
}

function respond(
  status: number,
  body: BodyInit | null,
  contentType: string,
  location: string | undefined,
): Response {
  const headers: Record<string, string> = {};
  if (status !== 204) headers["Content-Type"] = contentType;
  if (location) headers["Location"] = location;
  return new Response(status === 204 ? null : body, { status, headers });
}

/**
 * Builds the `forward(endpoint, fixedParams?)` factory the route modules use.
 *
 * @example
 * ```ts ignore
 * const forward = createForward({ bus, config, logger });
 * app.get("/v1/events/:id/tickets", forward(catalog.events.related, { rel: "tickets" }));
 * ```
 */
export function createForward(options: ForwarderOptions): Forward {
  const { bus, logger } = options;
  const timeoutMs = options.config.requestTimeoutMs;
  const limitBytes = options.config.bodyLimitBytes;
  const bodyTimeoutMs = options.config.bodyTimeoutMs;
  const requestOptions = { timeoutMs };
  const writes = new Set(["POST", "PATCH", "DELETE"]);

  return function forward(endpoint, fixedParams, forwardOptions = {}) {
    const successType = forwardOptions.contentType ?? JSONAPI;
    return async function forwardHandler(c) {
      const raw = c.req.raw;
      const method = raw.method;
      const request: HttpRequest = {
        actor: c.get("actor") ?? null,
        params: fixedParams ? { ...c.req.param(), ...fixedParams } : c.req.param(),
        path: c.req.path,
        query: queryOf(raw.url),
        requestId: c.get("requestId"),
      };
      if (forwardOptions.raw) {
        request.rawBody = await readTextBody(raw, limitBytes, bodyTimeoutMs);
        request.headers = {};
        for (const name of forwardOptions.raw.headers) {
          const value = raw.headers.get(name);
          if (value !== null) request.headers[name] = value;
        }
      } else if (
        method === "POST" || method === "PATCH" || (method === "DELETE" && hasBody(raw))
      ) {
        request.body = await readJsonBody(raw, limitBytes, bodyTimeoutMs);
      }
      // A retry-safe write: the owning service keeps the key (shared/idempotency.ts).
      const idempotencyKey = writes.has(method) ? raw.headers.get("idempotency-key") : null;
      const reply = await bus.forward(
        endpoint,
        request,
        idempotencyKey === null ? requestOptions : { timeoutMs, idempotencyKey },
      );
      const contentType = reply.status >= 400 ? JSONAPI : successType;
      const foreign = reply.foreignIncludes || reply.foreignRelations;
      if (foreign && reply.status < 300 && reply.body.length) {
        const body = await mergeForeign(reply.body, {
          includes: reply.foreignIncludes,
          relations: reply.foreignRelations,
        }, {
          bus,
          actor: request.actor,
          timeoutMs,
          logger,
          fields: sparseFieldsOf(request.query),
        });
        return respond(reply.status, body, contentType, reply.location);
      }
      // NATS payloads live in plain ArrayBuffers, so the bytes go out without a copy.
      const bytes = reply.body as Uint8Array<ArrayBuffer>;
      return respond(reply.status, bytes, contentType, reply.location);
    };
  };
}
