/**
 * A gateway and a catalog given different JWT_SECRETs: logins answer 200 and every signed-in
 * request 401 "the token is invalid or expired", and until 2026-12-06 nothing else said why (an
 * operator review). `/health` now names the catalog impaired, with the reason.
 */
import assert from "node:assert/strict";
import { createLogger } from "@shared/log.ts";
import { startTestSystem } from "@testing/system.ts";
import { createApp } from "./app.ts";

Deno.test("[gateway] GET /health names a catalog that signs tokens with another JWT_SECRET", async () => {
  await using system = await startTestSystem();
  const gatewayWith = (jwtSecret: string) =>
    createApp({
      bus: system.bus,
      config: { ...system.config, jwtSecret },
      logger: createLogger("gateway", "error"),
      services: ["catalog"],
    });

  const other = gatewayWith(`${system.config.jwtSecret}-but-another`);
  const response = await other.request("/health");
  assert.equal(response.status, 503);
  const report = await response.json();
  assert.deepEqual(report.impaired, ["catalog"]);
  assert.match(report.services.catalog.problems[0], /signs tokens with another JWT_SECRET/);
  assert.ok(
    !JSON.stringify(report).includes(system.config.jwtSecret!),
    "the report tells no secret",
  );
  // What the operator saw until then: the login works, the token it gives does not.
  const login = await other.request("/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: system.admin.email, password: system.admin.password }),
  });
  assert.equal(login.status, 200);
  const { access_token: token } = await login.json();
  const me = await other.request(`/v1/users/${system.admin.id}`, {
    headers: { Authorization: `JWT ${token}` },
  });
  assert.equal(me.status, 401);

  const same = gatewayWith(system.config.jwtSecret!);
  const healthy = await same.request("/health");
  assert.equal(healthy.status, 200);
  assert.deepEqual((await healthy.json()).services, { catalog: { instances: 1 } });
});
