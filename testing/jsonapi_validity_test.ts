import assert from "node:assert/strict";
import { assertJsonApi, jsonApiProblems } from "./jsonapi_validity.ts";

const links = (self: string) => ({ self });
const resource = (type: string, id: string, attributes: Record<string, unknown> = {}) => ({
  type,
  id,
  attributes,
  links: links(`/v1/${type}s/${id}`),
});

Deno.test("[testing] jsonApiProblems accepts valid documents of every kind", () => {
  const jsonapi = { version: "1.0" };
  assert.deepEqual(jsonApiProblems({ data: resource("event", "1"), jsonapi }, "/v1/events/1"), []);
  assert.deepEqual(jsonApiProblems({ data: [], meta: { count: 0 }, jsonapi }, "/v1/events"), []);
  assert.deepEqual(jsonApiProblems({ meta: { message: "deleted" }, jsonapi }, "/v1/events/1"), []);
  const error = { status: "400", detail: "Cannot read query", source: { parameter: "" } };
  assert.deepEqual(jsonApiProblems({ errors: [error], jsonapi }, "/v1/events?=1"), []);
});

Deno.test("[testing] jsonApiProblems allows an attribute named type only on tickets and codes", () => {
  for (const type of ["ticket", "discount-code"]) {
    assert.deepEqual(jsonApiProblems({ data: resource(type, "1", { type: "paid" }) }, "/"), []);
  }
  const problems = jsonApiProblems({ data: resource("event", "1", { type: "x" }) }, "/");
  assert.ok(problems.includes("/data/attributes must NOT have additional properties"), problems[0]);
});

Deno.test("[testing] jsonApiProblems reports schema and linkage problems", async (t) => {
  await t.step("a number as id", () => {
    assert.notDeepEqual(jsonApiProblems({ data: { type: "event", id: 1 } }, "/"), []);
  });
  await t.step("data beside errors", () => {
    assert.notDeepEqual(jsonApiProblems({ data: null, errors: [] }, "/"), []);
  });
  await t.step("an included resource without linkage", () => {
    const doc = {
      data: { ...resource("event", "1"), relationships: { tickets: { links: links("/x") } } },
      included: [resource("ticket", "7")],
    };
    assert.deepEqual(jsonApiProblems(doc, "/v1/events/1?include=tickets"), [
      'event 1: relationship "tickets" is included but has no data',
      "included ticket 7 is not reachable from the primary data",
    ]);
    assert.throws(
      () => assertJsonApi(doc, "GET /v1/events/1?include=tickets"),
      /Not valid JSON:API/,
    );
  });
});

Deno.test("[testing] jsonApiProblems accepts source.header only in a JSON:API 1.1 document", () => {
  const error = {
    status: "401",
    detail: "Cannot authenticate",
    source: { header: "Authorization" },
  };
  assert.deepEqual(jsonApiProblems({ errors: [error], jsonapi: { version: "1.0" } }, "/v1/users"), [
    '/errors/0/source has "header", which JSON:API 1.0 does not define',
  ]);
  assert.equal(jsonApiProblems({ errors: [error] }, "/v1/users").length, 1, "no jsonapi is 1.0");
  assert.deepEqual(
    jsonApiProblems({ errors: [error], jsonapi: { version: "1.1" } }, "/v1/users"),
    [],
  );
});
