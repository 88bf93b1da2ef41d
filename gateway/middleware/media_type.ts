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

/** One media range of an Accept header: its name, its media type parameters, its weight. */
interface MediaRange {
  name: string;
  /** Parameters other than `q` (JSON:API's `ext`, `profile`...). */
  params: string[];
  q: number;
}

function rangesOf(accept: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const range of accept.split(",")) {
    const [type, ...rest] = range.split(";");
    const name = type.trim().toLowerCase();
    if (name === "") continue;
    const weight = rest.find((p) => /^\s*q\s*=/i.test(p));
    const q = weight === undefined ? 1 : Number(weight.split("=")[1].trim());
    // A weight that is no number (RFC 9110 allows 0 to 1) counts as the default.
    const params = rest.filter((p) => p !== weight && p.trim() !== "");
    ranges.push({ name, params, q: Number.isFinite(q) ? q : 1 });
  }
  return ranges;
}

/**
 * The weight `ranges` give `type`: that of its most specific range (the type itself without
 * media type parameters, then its main type with any subtype, then any type at all, as RFC 9110
 * reads them), 0 when none matches.
 */
function weightOf(type: string, ranges: readonly MediaRange[]): number {
  const main = type.split("/")[0];
  for (const name of [type, `${main}/*`, "*/*"]) {
    const matching = ranges.filter((r) => r.name === name && (name !== type || !r.params.length));
    if (matching.length) return Math.max(...matching.map((r) => r.q));
  }
  return 0;
}

/**
 * True when `accept` (an Accept header value) allows a response this route can send: a weight
 * above 0 for JSON:API (or plain JSON on the login routes). JSON:API 1.0: when every instance of
 * its media type carries media type parameters, the answer is 406 whatever else is listed. An
 * empty value allows anything. Before, `q=0` ("not acceptable") was read as acceptance, and a
 * wildcard beside a parameterized JSON:API type passed.
 */
export function acceptable(accept: string, plainJson = false): boolean {
  const ranges = rangesOf(accept);
  if (!ranges.length) return true;
  const json = plainJson && weightOf(JSON_TYPE, ranges) > 0;
  const jsonApi = ranges.filter((r) => r.name === JSONAPI);
  if (jsonApi.length && jsonApi.every((r) => r.params.length)) return json;
  return weightOf(JSONAPI, ranges) > 0 || json;
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
