import assert from "node:assert/strict";
import { firstError, testGateway } from "./_test_utils.ts";

Deno.test("[gateway] an unknown path answers 404 JSON:API", async () => {
  await using gw = await testGateway();
  for (const path of ["/v1/nothing", "/v1/events/1/unknown-rel", "/"]) {
    const response = await gw.app.request(path);
    assert.equal(response.status, 404, path);
    assert.equal(response.headers.get("Cache-Control"), "private, no-store", "for no cache");
    assert.equal((await firstError(response)).code, "not_found");
  }
});

Deno.test("[gateway] a wrong method on a known path answers 405 with Allow", async (t) => {
  await using gw = await testGateway();
  const cases: [string, string, string][] = [
    ["PUT", "/v1/events/1", "GET, PATCH, DELETE, HEAD"],
    ["DELETE", "/v1/events", "GET, POST, HEAD"],
    ["POST", "/v1/roles/owner", "GET, HEAD"],
    ["GET", "/v1/auth/login", "POST"],
    ["POST", "/v1/events/1/relationships/tickets", "GET, HEAD"],
    ["POST", "/health", "GET, HEAD"],
  ];
  for (const [method, path, allow] of cases) {
    await t.step(`${method} ${path}`, async () => {
      const response = await gw.app.request(path, { method });
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("Allow"), allow);
      assert.equal(response.headers.get("Cache-Control"), "private, no-store");
      assert.equal((await firstError(response)).code, "method_not_allowed");
    });
  }
});

Deno.test("[gateway] an unexpected error becomes a generic 500 without details", async () => {
  await using gw = await testGateway();
  gw.app.get("/boom", () => {
    throw new Error("Cannot connect to postgres://admin:hunter2@db/x");
  });
  const response = await gw.app.request("/boom");
  assert.equal(response.status, 500);
  const text = await response.text();
  assert.doesNotMatch(text, /hunter2|postgres|at .*\.ts/);
  assert.deepEqual(JSON.parse(text), {
    errors: [{
      status: "500",
      code: "internal_error",
      title: "Internal server error",
      detail: "The server could not complete the request",
    }],
    jsonapi: { version: "1.0" },
  });
});

Deno.test("[gateway] a Hono HTTPException keeps its status as a JSON:API error", async () => {
  const { HTTPException } = await import("hono/http-exception");
  await using gw = await testGateway();
  gw.app.get("/too-large", () => {
    throw new HTTPException(413, { message: "internal wording" });
  });
  const response = await gw.app.request("/too-large");
  assert.equal(response.status, 413);
  const error = await firstError(response);
  assert.equal(error.code, "payload_too_large");
  assert.equal(error.detail, "Cannot process the request");
});
