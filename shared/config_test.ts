import assert from "node:assert/strict";
import { loadConfig, serviceDatabaseUrl } from "./config.ts";

Deno.test("[config] loadConfig uses the documented defaults", () => {
  const config = loadConfig({});
  assert.equal(config.host, "127.0.0.1");
  assert.equal(config.port, 8080);
  assert.equal(config.databaseUrl, "postgres://postgres@127.0.0.1:5432/open_event");
  assert.equal(config.natsUrl, "nats://127.0.0.1:4222");
  assert.equal(config.jwtSecret, undefined);
});

Deno.test("[config] loadConfig refuses values it cannot read", async (t) => {
  await t.step("a port that is not a number", () => {
    assert.throws(() => loadConfig({ PORT: "http" }), /Cannot read PORT/);
  });
  await t.step("an unknown log level", () => {
    assert.throws(() => loadConfig({ LOG_LEVEL: "loud" }), /Cannot read LOG_LEVEL/);
  });
});

Deno.test("[config] serviceDatabaseUrl prefers <SERVICE>_DATABASE_URL", () => {
  const env = { DATABASE_URL: "postgres://a/one", CATALOG_DATABASE_URL: "postgres://b/two" };
  assert.equal(serviceDatabaseUrl("catalog", env), "postgres://b/two");
  assert.equal(serviceDatabaseUrl("audit", env), "postgres://a/one");
});
