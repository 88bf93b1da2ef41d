import assert from "node:assert/strict";
import { createFloorApp, FLOOR_PATH } from "./hono_floor.ts";

Deno.test("[bench] the Hono floor answers every GET with the document it was given", async () => {
  const app = createFloorApp();
  assert.equal(await (await app.request("/v1/events/1")).text(), "");
  const put = await app.request(FLOOR_PATH, {
    method: "PUT",
    headers: { "Content-Type": "application/vnd.api+json" },
    body: '{"data":null}',
  });
  assert.equal(put.status, 204);
  for (const path of ["/v1/events/1", "/anything?x=1"]) {
    const response = await app.request(path);
    assert.equal(response.headers.get("Content-Type"), "application/vnd.api+json");
    assert.equal(await response.text(), '{"data":null}');
  }
});
