/**
 * Every JSON:API response body Dredd sees must be valid JSON:API 1.0 with full linkage (the same
 * check as the integration tests, testing/jsonapi_validity.ts). A body that is not fails its
 * transaction, whatever the blueprint's example says.
 */
import { hooks, type Transaction } from "./hooks.ts";
import { isJsonApiMediaType, jsonApiProblems } from "@testing/jsonapi_validity.ts";

function headerOf(headers: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

/** Throws (so the registry fails the transaction) when the real body is not valid JSON:API. */
function checkJsonApiBody(transaction: Transaction): void {
  const real = transaction.real;
  if (!real?.body || !isJsonApiMediaType(headerOf(real.headers ?? {}, "content-type"))) return;
  const problems = jsonApiProblems(JSON.parse(real.body), transaction.request.uri);
  if (problems.length) throw new Error(`Not valid JSON:API: ${problems.join("; ")}`);
}

hooks.afterEach(checkJsonApiBody);
