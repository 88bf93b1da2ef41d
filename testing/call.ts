/**
 * Requests through the gateway app in-process (`app.request()`), as a client would send them,
 * and the assertions every API test makes on the answers: a status, a JSON:API error document.
 *
 * @example
 * ```ts ignore
 * const call = caller(app);
 * expectStatus(await call("GET", "/v1/events"), 200);
 * expectError(await call("GET", "/v1/events/x"), 404);
 * ```
 */
import type { Hono } from "hono";
import type { GatewayEnv } from "../gateway/env.ts";
import { errorDocumentOf } from "@shared/errors.ts";
import type { JsonBody } from "./json.ts";
import { assertJsonApi, isJsonApiMediaType } from "./jsonapi_validity.ts";

export const JSONAPI = "application/vnd.api+json";

export interface CallOptions {
  /** Sent as `Authorization: JWT <token>`. */
  token?: string;
  /** An object is sent as JSON; a string is sent as is (for malformed bodies). */
  body?: unknown;
  /** Extra or overriding headers (e.g. another `Content-Type`). */
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or null when the body is empty or not JSON. */
  body: JsonBody;
  /** The raw body text (for "never contains X" checks). */
  text: string;
}

/** One request through the app: what `caller` returns. */
export type Call = (method: string, path: string, options?: CallOptions) => Promise<CallResult>;

function parseBody(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Makes a `call` function for a Hono app (also handy for gateway-only tests). */
export function caller(app: Hono<GatewayEnv>): Call {
  return async function call(method, path, options = {}) {
    const headers: Record<string, string> = {};
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["Content-Type"] = JSONAPI;
    }
    if (options.token) headers["Authorization"] = `JWT ${options.token}`;
    Object.assign(headers, options.headers);
    const response = await app.request(path, { method, headers, body });
    const text = await response.text();
    const parsed = parseBody(text);
    // Every JSON:API body a test sees must be valid JSON:API 1.0 with full linkage.
    if (parsed !== null && isJsonApiMediaType(response.headers.get("Content-Type"))) {
      assertJsonApi(parsed, `${method} ${path}`);
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  };
}

/**
 * Asserts the status of a call, showing the request's answer when it differs.
 *
 * @example
 * ```ts ignore
 * expectStatus(await system.call("GET", "/v1/events"), 200);
 * ```
 */
export function expectStatus(result: CallResult, status: number, what = ""): void {
  if (result.status !== status) {
    throw new Error(
      `Expected ${status}, got ${result.status}${what ? ` (${what})` : ""}: ${
        result.text.slice(0, 600)
      }`,
    );
  }
}

/**
 * Asserts a JSON:API error answer: its status, media type, and where its first error points.
 *
 * @example
 * ```ts ignore
 * expectError(reply, 422, { pointer: "/data/attributes/ends-at" });
 * ```
 */
export function expectError(
  result: CallResult,
  status: number,
  source: { pointer?: string; parameter?: string; header?: string } = {},
  what = "",
): void {
  expectStatus(result, status, what);
  const type = result.headers.get("Content-Type");
  if (type !== JSONAPI) throw new Error(`Expected a JSON:API error document, got ${type}`);
  const first = result.body?.errors?.[0];
  if (!first || first.status !== String(status)) {
    throw new Error(`Expected an errors array with status ${status}: ${result.text}`);
  }
  if (result.body.jsonapi?.version !== errorDocumentOf(result.body.errors).jsonapi.version) {
    throw new Error(`No jsonapi member of the right version: ${result.text}`);
  }
  for (const [key, value] of Object.entries(source)) {
    if (first.source?.[key] !== value) {
      throw new Error(
        `Expected source.${key} ${JSON.stringify(value)}${
          what ? ` (${what})` : ""
        }: ${result.text}`,
      );
    }
  }
}
