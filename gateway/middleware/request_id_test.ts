import assert from "node:assert/strict";
import { testGateway } from "../_test_utils.ts";
import { pickRequestId } from "./request_id.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

Deno.test("[gateway] pickRequestId keeps sane ids and replaces the rest", () => {
  assert.equal(pickRequestId("abc-123_x.y"), "abc-123_x.y");
  assert.match(pickRequestId(null), UUID);
  assert.match(pickRequestId(""), UUID);
  assert.match(pickRequestId("x".repeat(101)), UUID);
  assert.match(pickRequestId("a b"), UUID);
  assert.match(pickRequestId("id\nforged log line"), UUID);
});

Deno.test("[gateway] X-Request-Id is echoed or generated, errors included", async () => {
  await using gw = await testGateway();
  const echoed = await gw.app.request("/v1/nowhere", { headers: { "X-Request-Id": "abc-1" } });
  assert.equal(echoed.status, 404);
  assert.equal(echoed.headers.get("X-Request-Id"), "abc-1");
  await echoed.body?.cancel();
  const generated = await gw.app.request("/v1/events", {
    headers: { "X-Request-Id": "<script>" },
  });
  assert.equal(generated.status, 503);
  assert.match(generated.headers.get("X-Request-Id")!, UUID);
  await generated.body?.cancel();
});
