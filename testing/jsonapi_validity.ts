/**
 * Is a response body a valid JSON:API 1.0 document? Checked with ajv against the JSON:API 1.0
 * schema (testing/jsonapi-schema-1.0.json, the copy jsonapi.org publishes, as shipped by the npm
 * package jsonapi-validator@3.0.5, MIT), plus full linkage (shared/jsonapi_check.ts). The
 * integration tests' HTTP helper and the Dredd hooks run every JSON:API body through it.
 *
 * One exception is allowed: tickets and discount codes keep the original's attribute `type`
 * (its clients read it), which JSON:API reserves; the schema sees those resources without it.
 *
 * @example
 * ```ts
 * import { jsonApiProblems } from "./jsonapi_validity.ts";
 * jsonApiProblems({ data: { type: "ticket", id: "1", attributes: { type: "paid" } } }, "/v1/tickets/1");
 * // []
 * ```
 */
import type { JsonBody } from "./json.ts";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import draft06 from "ajv/dist/refs/json-schema-draft-06.json" with { type: "json" };
import { linkageOptionsOf, linkageProblems } from "@shared/jsonapi_check.ts";
import schema from "./jsonapi-schema-1.0.json" with { type: "json" };

/** Resource types whose attribute `type` is kept from the original (README, Deliberate differences). */
const TYPE_ATTRIBUTE_KEPT = new Set(["ticket", "discount-code"]);

const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addMetaSchema(draft06);
addFormats.default(ajv);
const validate = ajv.compile(schema);

type Json = JsonBody;

function withoutKeptType(resource: Json): Json {
  if (!TYPE_ATTRIBUTE_KEPT.has(resource?.type) || typeof resource.attributes !== "object") {
    return resource;
  }
  const { type: _kept, ...attributes } = resource.attributes ?? {};
  return { ...resource, attributes };
}

/** The document as the schema should see it: the allowed exception taken out. */
function forSchema(document: Json): Json {
  if (typeof document !== "object" || document === null) return document;
  const out = { ...document };
  if (Array.isArray(out.data)) out.data = out.data.map(withoutKeptType);
  else if (out.data) out.data = withoutKeptType(out.data);
  if (Array.isArray(out.included)) out.included = out.included.map(withoutKeptType);
  return out;
}

/** The members of an error's `source` that JSON:API 1.0 defines (1.1 added `header`). */
const SOURCE_MEMBERS_1_0 = new Set(["pointer", "parameter"]);

/**
 * What the schema does not see: JSON:API 1.0 says its objects "MUST NOT contain any additional
 * members", and its schema leaves an error's `source` open. A document that names a header as an
 * error's source must say it is JSON:API 1.1 (a document without `jsonapi` is 1.0).
 */
function versionProblems(document: unknown): string[] {
  const { errors, jsonapi } = (document ?? {}) as Json;
  if (!Array.isArray(errors) || (jsonapi?.version ?? "1.0") !== "1.0") return [];
  return errors.flatMap((error: Json, index: number) =>
    Object.keys(error?.source ?? {})
      .filter((member) => !SOURCE_MEMBERS_1_0.has(member))
      .map((member) =>
        `/errors/${index}/source has "${member}", which JSON:API 1.0 does not define`
      )
  );
}

/**
 * Every way `document` (the answer to a request for `url`) breaks JSON:API 1.0: schema errors
 * as "<instance path> <message>" and full-linkage problems; empty when it is valid.
 */
export function jsonApiProblems(document: unknown, url: string): string[] {
  const problems: string[] = [...versionProblems(document)];
  if (!validate(forSchema(document))) {
    for (const error of validate.errors ?? []) {
      problems.push(`${error.instancePath || "/"} ${error.message ?? "is invalid"}`);
    }
  }
  problems.push(...linkageProblems(document, linkageOptionsOf(url)));
  return problems;
}

/** Whether a response with this Content-Type carries a JSON:API document. */
export function isJsonApiMediaType(contentType: string | null | undefined): boolean {
  return (contentType ?? "").toLowerCase().startsWith("application/vnd.api+json");
}

/**
 * Throws when `document` is not valid JSON:API, naming the request and every problem.
 *
 * @example
 * ```ts
 * import { assertJsonApi } from "./jsonapi_validity.ts";
 * assertJsonApi({ data: null, jsonapi: { version: "1.0" } }, "GET /v1/users/1/events");
 * ```
 */
export function assertJsonApi(document: unknown, request: string): void {
  const url = request.slice(request.indexOf(" ") + 1);
  const problems = jsonApiProblems(document, url);
  if (problems.length) {
    throw new Error(
      `Not valid JSON:API: ${request}\n  ${problems.join("\n  ")}\n${JSON.stringify(document)}`,
    );
  }
}
