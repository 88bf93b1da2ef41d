import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { httpRequestSchema, isExactHttpRequest } from "./http.ts";

const base = { actor: null, params: { id: "7" }, path: "/v1/events/7", query: {}, requestId: "r1" };

/** What the bus may receive: JSON text, parsed as the bus parses it. */
const samples: [string, unknown][] = [
  ["anonymous", base],
  ["signed in", { ...base, actor: { id: "12" } }],
  ["with a body", { ...base, body: { data: { type: "event" } } }],
  ["with a null body", { ...base, body: null }],
  ["webhook", { ...base, rawBody: "{}", headers: { "stripe-signature": "t=1" } }],
  ["query values", { ...base, query: { "page[size]": "5", include: "owner" } }],
  ["an extra key", { ...base, extra: 1 }],
  ["an extra actor key", { ...base, actor: { id: "1", admin: true } }],
  ["an empty actor id", { ...base, actor: { id: "" } }],
  ["a numeric actor id", { ...base, actor: { id: 1 } }],
  ["no actor", { params: {}, path: "/", query: {}, requestId: "r" }],
  ["a number in params", { ...base, params: { id: 7 } }],
  ["params as an array", { ...base, params: ["7"] }],
  ["a nested query value", { ...base, query: { filter: { a: "b" } } }],
  ["no request id", { actor: null, params: {}, path: "/", query: {} }],
  ["a numeric path", { ...base, path: 3 }],
  ["a numeric raw body", { ...base, rawBody: 3 }],
  ["null headers", { ...base, headers: null }],
  ["not an object", "text"],
  ["null", null],
  ["an array", [base]],
];

Deno.test("[schemas] isExactHttpRequest accepts only what the schema returns unchanged", async (t) => {
  for (const [name, value] of samples) {
    await t.step(name, () => {
      const parsed = JSON.parse(JSON.stringify(value));
      const zod = httpRequestSchema.safeParse(parsed);
      const exact = zod.success && isDeepStrictEqual(zod.data, parsed);
      assert.equal(isExactHttpRequest(parsed), exact);
    });
  }
  await t.step("a __proto__ key is left to the schema", () => {
    const parsed = JSON.parse(
      '{"actor":null,"params":{"__proto__":"x"},"path":"/","query":{},"requestId":"r"}',
    );
    assert.equal(isExactHttpRequest(parsed), false);
    assert.equal(isExactHttpRequest({ ...parsed, params: {} }), true);
  });
});
