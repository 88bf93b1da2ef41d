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

Deno.test("[config] loadConfig refuses at start a value that would only fail later", async (t) => {
  // Each was taken and failed afterwards: a stack trace at listen (PORT 70000), a start that
  // waited for a gateway on port 0, every login and sign-up a 500 (PASSWORD_ITERATIONS 0), a
  // gateway crashing on its first subscription or listening on every system's subjects
  // (BUS_PREFIX), and REQUEST_TIMEOUT_MS 0 blamed on STRIPE_TIMEOUT_MS (an operator review).
  const refused: [string, string][] = [
    ["PORT", "70000"],
    ["PORT", "0"],
    ["PASSWORD_ITERATIONS", "0"],
    ["REQUEST_TIMEOUT_MS", "0"],
    // Taken by Number() until 2026-12-05 (an operator review): a port in hex or with an exponent,
    // a value with a space; and a Stripe timeout of 0, every Stripe call then a 504, as with a
    // request timeout of 1 (half of it the Stripe default).
    ["PORT", "0x4940"],
    ["PORT", "1e4"],
    ["PORT", " 18711"],
    ["BODY_LIMIT_BYTES", "1e6"],
    ["CACHE_MAX_BYTES", "-0"],
    ["STRIPE_TIMEOUT_MS", "0"],
    ["REQUEST_TIMEOUT_MS", "1"],
    ["BUS_PREFIX", "a b"],
    ["BUS_PREFIX", "oe.*"],
    ["BUS_PREFIX", "oe.>"],
    ["BUS_PREFIX", ".oe"],
    ["BUS_PREFIX", "oe..eu"],
    ["BUS_PREFIX", "oe."],
    // Not "off", as 0 is for HEADER_TIMEOUT_MS: every body a 413, or a 408 (an operator review).
    ["BODY_LIMIT_BYTES", "0"],
    ["BODY_TIMEOUT_MS", "0"],
    // Past a timer's longest wait setTimeout fires at once: 30 days meant no delay at all.
    ["SHUTDOWN_DELAY_MS", String(30 * 24 * 3600_000)],
    ["REQUEST_TIMEOUT_MS", String(2 ** 31)],
  ];
  for (const [name, value] of refused) {
    await t.step(`${name}=${value}`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        new RegExp(`^Error: Cannot read ${name}:`),
      );
    });
  }
  await t.step("the edges that work are taken", () => {
    assert.equal(loadConfig({ PORT: "65535" }).port, 65535);
    assert.equal(loadConfig({ PASSWORD_ITERATIONS: "1" }).passwordIterations, 1);
    const shortest = loadConfig({ REQUEST_TIMEOUT_MS: "2" });
    assert.deepEqual([shortest.requestTimeoutMs, shortest.stripeTimeoutMs], [2, 1]);
    assert.equal(loadConfig({ STRIPE_TIMEOUT_MS: "1" }).stripeTimeoutMs, 1);
    // An empty value is the default, as for every other setting (it stopped the process).
    assert.equal(loadConfig({ LOG_LEVEL: "" }).logLevel, "info");
    for (const prefix of ["oe", "oe.eu", "oe_eu", "fail_0b1c-2d", "OE$x"]) {
      assert.equal(loadConfig({ BUS_PREFIX: prefix }).busPrefix, prefix);
    }
  });
});

Deno.test("[config] serviceDatabaseUrl prefers <SERVICE>_DATABASE_URL", () => {
  const env = { DATABASE_URL: "postgres://a/one", CATALOG_DATABASE_URL: "postgres://b/two" };
  assert.equal(serviceDatabaseUrl("catalog", env), "postgres://b/two");
  assert.equal(serviceDatabaseUrl("audit", env), "postgres://a/one");
});

Deno.test("[config] loadConfig keeps <SERVICE>_DATABASE_URL for serviceDatabaseUrl", () => {
  const config = loadConfig({
    DATABASE_URL: "postgres://a/one",
    CATALOG_DATABASE_URL: "postgres://b/two",
    AUDIT_DATABASE_URL: "",
  });
  assert.deepEqual(config.serviceDatabaseUrls, { catalog: "postgres://b/two" });
  assert.equal(serviceDatabaseUrl("catalog", config), "postgres://b/two");
  assert.equal(serviceDatabaseUrl("audit", config), "postgres://a/one");
  assert.equal(serviceDatabaseUrl("audit", loadConfig({})), loadConfig({}).databaseUrl);
});

Deno.test("[config] loadConfig reads the Stripe settings, all optional", async (t) => {
  await t.step("defaults: the real Connect URL, nothing secret", () => {
    const config = loadConfig({});
    assert.equal(config.stripeConnectUrl, "https://connect.stripe.com");
    assert.equal(config.stripeSecretKey, undefined);
    assert.equal(config.stripeClientId, undefined);
    assert.equal(config.stripeWebhookSecret, undefined);
    assert.equal(config.paymentsEncryptionKey, undefined);
    assert.equal(config.stripeTimeoutMs, 3000);
  });
  await t.step("values from the environment, the URL without its trailing slash", () => {
    const config = loadConfig({
      STRIPE_SECRET_KEY: "sk_test_1",
      STRIPE_CLIENT_ID: "ca_1",
      STRIPE_CONNECT_URL: "http://127.0.0.1:9999/",
      STRIPE_WEBHOOK_SECRET: "whsec_1",
      PAYMENTS_ENCRYPTION_KEY: "k",
      STRIPE_TIMEOUT_MS: "250",
    });
    assert.equal(config.stripeSecretKey, "sk_test_1");
    assert.equal(config.stripeClientId, "ca_1");
    assert.equal(config.stripeConnectUrl, "http://127.0.0.1:9999");
    assert.equal(config.stripeWebhookSecret, "whsec_1");
    assert.equal(config.paymentsEncryptionKey, "k");
    assert.equal(config.stripeTimeoutMs, 250);
  });
  await t.step("a Connect URL that is not an http(s) URL is refused", () => {
    assert.throws(
      () => loadConfig({ STRIPE_CONNECT_URL: "nope" }),
      /Cannot read STRIPE_CONNECT_URL/,
    );
    assert.throws(
      () => loadConfig({ STRIPE_CONNECT_URL: "ftp://x" }),
      /Cannot read STRIPE_CONNECT_URL/,
    );
  });
});

Deno.test("[config] loadConfig refuses STRIPE_TIMEOUT_MS not below REQUEST_TIMEOUT_MS", async (t) => {
  await t.step("equal or above: refused with a clear message", () => {
    for (const stripe of ["5000", "6000"]) {
      assert.throws(
        () => loadConfig({ REQUEST_TIMEOUT_MS: "5000", STRIPE_TIMEOUT_MS: stripe }),
        /^Error: Cannot read STRIPE_TIMEOUT_MS: \d+ must be below REQUEST_TIMEOUT_MS \(5000\)/,
      );
    }
    assert.throws(
      () => loadConfig({ REQUEST_TIMEOUT_MS: "2000", STRIPE_TIMEOUT_MS: "3000" }),
      /Cannot read STRIPE_TIMEOUT_MS/,
    );
  });
  await t.step("below: accepted", () => {
    const config = loadConfig({ REQUEST_TIMEOUT_MS: "5000", STRIPE_TIMEOUT_MS: "4999" });
    assert.equal(config.stripeTimeoutMs, 4999);
  });
  await t.step("unset: 3000, or half a shorter request timeout", () => {
    assert.equal(loadConfig({ REQUEST_TIMEOUT_MS: "5000" }).stripeTimeoutMs, 3000);
    assert.equal(loadConfig({ REQUEST_TIMEOUT_MS: "100" }).stripeTimeoutMs, 50);
  });
});

Deno.test("[config] loadConfig reads NATS_URL as a list of servers", async (t) => {
  await t.step("one server", () => {
    assert.deepEqual(loadConfig({}).natsServers, ["nats://127.0.0.1:4222"]);
  });
  await t.step("a comma-separated list, spaces and host:port allowed", () => {
    const config = loadConfig({ NATS_URL: "nats://a:4222, nats://b:4223 ,c:4224" });
    assert.deepEqual(config.natsServers, ["nats://a:4222", "nats://b:4223", "c:4224"]);
    assert.equal(config.natsUrl, "nats://a:4222, nats://b:4223 ,c:4224");
  });
  await t.step("a list with something that is no NATS URL is refused", () => {
    assert.throws(() => loadConfig({ NATS_URL: "nats://a:4222,http://b" }), /Cannot read NATS_URL/);
    assert.throws(() => loadConfig({ NATS_URL: " , " }), /names no server/);
  });
  await t.step("a refused server is quoted without its login (a token or a password)", () => {
    for (
      const bad of [
        "nats://a:4222,http://tok-SECRET-1234@b",
        "nats://tok-SECRET-1234@[b",
        "nats://oe:pw-SECRET-1234@[b",
      ]
    ) {
      assert.throws(() => loadConfig({ NATS_URL: bad }), (error: Error) => {
        assert.match(error.message, /Cannot read NATS_URL: ".*:\/\/\[redacted\]@/);
        assert.doesNotMatch(error.message, /SECRET/);
        return true;
      });
    }
  });
});

Deno.test("[config] loadConfig reads DATABASE_POOL_MAX, at least 1, default 10", async (t) => {
  await t.step("default", () => assert.equal(loadConfig({}).databasePoolMax, 10));
  await t.step(
    "four",
    () => assert.equal(loadConfig({ DATABASE_POOL_MAX: "4" }).databasePoolMax, 4),
  );
  for (const bad of ["0", "-1", "two"]) {
    await t.step(`refuses ${bad}`, () => {
      assert.throws(() => loadConfig({ DATABASE_POOL_MAX: bad }), /Cannot read DATABASE_POOL_MAX/);
    });
  }
});

Deno.test("[config] loadConfig reads FACTS_REPLICAS, 1 to 5, default 1", async (t) => {
  await t.step("default", () => assert.equal(loadConfig({}).factsReplicas, 1));
  await t.step("three", () => assert.equal(loadConfig({ FACTS_REPLICAS: "3" }).factsReplicas, 3));
  for (const bad of ["0", "6", "two"]) {
    await t.step(`refused: ${bad}`, () => {
      assert.throws(() => loadConfig({ FACTS_REPLICAS: bad }), /Cannot read FACTS_REPLICAS/);
    });
  }
});

Deno.test("[config] production mode refuses a JWT_SECRET shorter than 32 characters", () => {
  const production = { OE_ENV: "production", PAYMENTS_ENCRYPTION_KEY: btoa("k".repeat(32)) };
  // Taken until 2026-12-06, `x` included (an operator review): a secret guessed from any token.
  assert.throws(
    () => loadConfig({ ...production, JWT_SECRET: "short-secret" }),
    (error: Error) =>
      /^Cannot read JWT_SECRET: it has 12 characters, .* 32 at least/.test(error.message) &&
      !error.message.includes("short-secret"),
  );
  const secret = "s".repeat(32);
  assert.equal(loadConfig({ ...production, JWT_SECRET: secret }).jwtSecret, secret);
  // A development start takes any secret (the tests' own among them).
  assert.equal(loadConfig({ JWT_SECRET: "x" }).jwtSecret, "x");
});

Deno.test("[config] loadConfig reads the gateway's body and header time limits", () => {
  assert.deepEqual(
    [loadConfig({}).bodyTimeoutMs, loadConfig({}).headerTimeoutMs],
    [10_000, 10_000],
  );
  const config = loadConfig({ BODY_TIMEOUT_MS: "2000", HEADER_TIMEOUT_MS: "0" });
  assert.deepEqual([config.bodyTimeoutMs, config.headerTimeoutMs], [2000, 0]);
});

Deno.test("[config] loadConfig reads METRICS_ADDR as host:port and METRICS_TOKEN", async (t) => {
  await t.step("unset: no metrics address, no token", () => {
    const config = loadConfig({});
    assert.equal(config.metricsAddr, undefined);
    assert.equal(config.metricsToken, undefined);
  });
  await t.step("IPv4 and IPv6 addresses", () => {
    assert.deepEqual(loadConfig({ METRICS_ADDR: "0.0.0.0:9464" }).metricsAddr, {
      hostname: "0.0.0.0",
      port: 9464,
    });
    assert.deepEqual(loadConfig({ METRICS_ADDR: "[::1]:9464" }).metricsAddr, {
      hostname: "::1",
      port: 9464,
    });
  });
  await t.step("anything else is refused", () => {
    for (const raw of ["9464", "host", ":9464", "host:99999"]) {
      assert.throws(() => loadConfig({ METRICS_ADDR: raw }), /Cannot read METRICS_ADDR/, raw);
    }
  });
});
