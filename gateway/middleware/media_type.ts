/**
 * JSON:API media type negotiation: request bodies must be `application/vnd.api+json` without
 * parameters (415), and an `Accept` header must allow that type (406). Routes that also take
 * plain JSON (login) accept `application/json` both ways.
 */
import type { MiddlewareHandler } from "hono";
import { NotAcceptableError, UnsupportedMediaTypeError } from "@shared/errors.ts";
import type { GatewayEnv } from "../env.ts";
import { hasBody } from "./body.ts";

export const JSONAPI = "application/vnd.api+json";
const JSON_TYPE = "application/json";

export interface MediaTypeOptions {
  /** Also accept `application/json` bodies and `Accept` values (the login routes). */
  plainJson?: boolean;
}

/** True when `accept` (an Accept header value) allows a response this route can send. */
export function acceptable(accept: string, plainJson = false): boolean {
  for (const range of accept.split(",")) {
    const [type, ...params] = range.split(";");
    const name = type.trim().toLowerCase();
    if (name === "*/*" || name === "application/*" || name === "") return true;
    if (plainJson && name === JSON_TYPE) return true;
    // JSON:API 1.0: an instance with media type parameters does not count; `q` is not one.
    if (name === JSONAPI && params.every((p) => /^\s*q\s*=/i.test(p))) return true;
  }
  return false;
}

/** Why `contentType` is refused for a request body, or undefined when it is fine. */
export function contentTypeProblem(
  contentType: string | undefined,
  plainJson = false,
): string | undefined {
  if (contentType === undefined) return "the request has no Content-Type";
  const [type, ...params] = contentType.split(";");
  const name = type.trim().toLowerCase();
  if (name === JSONAPI) {
    return params.length ? `${JSONAPI} must not carry media type parameters` : undefined;
  }
  if (plainJson && name === JSON_TYPE) return undefined;
  return `the body must be ${plainJson ? `${JSONAPI} or ${JSON_TYPE}` : JSONAPI}`;
}

/**
 * Checks `Accept` on every request and `Content-Type` on requests that carry a body.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { mediaType } from "./media_type.ts";
 * const app = new Hono();
 * app.post("/v1/auth/login", mediaType({ plainJson: true }), (c) => c.json({}));
 * ```
 */
export function mediaType(options: MediaTypeOptions = {}): MiddlewareHandler<GatewayEnv> {
  const plainJson = options.plainJson ?? false;
  return async function mediaTypeMiddleware(c, next) {
    const accept = c.req.header("Accept");
    if (accept !== undefined && accept !== JSONAPI && !acceptable(accept, plainJson)) {
      throw new NotAcceptableError(
        `Cannot answer in a type the Accept header allows: use ${JSONAPI}`,
        {
          header: "Accept",
        },
      );
    }
    const method = c.req.method;
    if (method === "POST" || method === "PATCH" || (method === "DELETE" && hasBody(c.req.raw))) {
      const problem = contentTypeProblem(c.req.header("Content-Type"), plainJson);
      if (problem) {
        throw new UnsupportedMediaTypeError(`Cannot read the body: ${problem}`, {
          header: "Content-Type",
        });
      }
    }
    await next();
  };
}
