import assert from "node:assert/strict";
import { testGateway } from "./_test_utils.ts";

Deno.test("[gateway] GET /health counts the instances of every service", async () => {
  await using gw = await testGateway({ services: ["catalog", "discounts"] });
  await gw.serve("catalog", []);
  await gw.serve("catalog", []);
  await gw.serve("discounts", []);
  const response = await gw.app.request("/health");
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), {
    status: "ok",
    services: { catalog: { instances: 2 }, discounts: { instances: 1 } },
  });
});

Deno.test("[gateway] GET /health answers 503 naming the missing services", async () => {
  await using gw = await testGateway({ services: ["catalog", "discounts", "audit"] });
  await gw.serve("catalog", []);
  const response = await gw.app.request("/health");
  assert.equal(response.status, 503);
  assert.deepEqual(await response.json(), {
    status: "unavailable",
    services: {
      catalog: { instances: 1 },
      discounts: { instances: 0 },
      audit: { instances: 0 },
    },
    missing: ["discounts", "audit"],
  });
});

Deno.test("[gateway] GET /health ignores instances of another bus prefix", async () => {
  await using other = await testGateway({ services: ["catalog"] });
  await using gw = await testGateway({ services: ["catalog"] });
  await other.serve("catalog", []);
  const response = await gw.app.request("/health");
  assert.equal(response.status, 503);
  assert.deepEqual((await response.json()).missing, ["catalog"]);
});
