import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { BadGatewayError, GatewayTimeoutError, UnprocessableError } from "@shared/errors.ts";
import { startFakeStripe } from "./fake_stripe.ts";
import {
  deauthorize,
  DeauthorizeRefusedError,
  exchangeCode,
  scrub,
  type StripeSettings,
} from "./stripe.ts";

const SECRET = "sk_test_platform_0123456789";
const CLIENT = "ca_test_client";

Deno.test("[payments] exchangeCode posts the form and returns the account's keys", async () => {
  await using stripe = await startFakeStripe({ secretKey: SECRET, clientId: CLIENT });
  const settings: StripeSettings = {
    connectUrl: stripe.url,
    secretKey: SECRET,
    clientId: CLIENT,
    timeoutMs: 1000,
  };
  const grant = stripe.grant();
  const tokens = await exchangeCode(settings, grant.code);
  assert.deepEqual(tokens, {
    accessToken: grant.accessToken,
    refreshToken: grant.refreshToken,
    accountId: grant.accountId,
    publishableKey: grant.publishableKey,
    scope: "read_write",
    livemode: false,
  });
  assert.deepEqual(stripe.calls[0], {
    path: "/oauth/token",
    form: { client_secret: SECRET, code: grant.code, grant_type: "authorization_code" },
    authorization: null,
  });
});

Deno.test("[payments] exchangeCode turns Stripe's refusal into 422 without the code", async () => {
  await using stripe = await startFakeStripe({ secretKey: SECRET, clientId: CLIENT });
  const settings = { connectUrl: stripe.url, secretKey: SECRET, clientId: CLIENT, timeoutMs: 1000 };
  const code = "ac_unknown_0123456789";
  await assert.rejects(() => exchangeCode(settings, code), (error: Error) => {
    assert.ok(error instanceof UnprocessableError);
    assert.equal(
      error.message,
      "Cannot link Stripe: Authorization code does not exist: [redacted]",
    );
    assert.equal(error.source?.pointer, "/data/attributes/stripe-auth-code");
    return true;
  });
  const grant = stripe.grant();
  await exchangeCode(settings, grant.code);
  await assert.rejects(() => exchangeCode(settings, grant.code), /already been used/);
  // A wrong platform key is the operator's problem, not the code's: 502, and never the key.
  await assert.rejects(
    () => exchangeCode({ ...settings, secretKey: "sk_test_wrong_key" }, stripe.grant().code),
    (error: Error) => error instanceof BadGatewayError && !error.message.includes("sk_test"),
  );
});

Deno.test("[payments] deauthorize takes only 'not connected' as already gone", async () => {
  await using stripe = await startFakeStripe({ secretKey: SECRET, clientId: CLIENT });
  const settings = { connectUrl: stripe.url, secretKey: SECRET, clientId: CLIENT, timeoutMs: 1000 };
  const grant = stripe.grant();
  const tokens = await exchangeCode(settings, grant.code);
  // A wrong platform key (401) must not look like "already disconnected".
  await assert.rejects(
    () => deauthorize({ ...settings, secretKey: "sk_test_wrong_key" }, tokens.accountId),
    (error: Error) =>
      error instanceof BadGatewayError && !(error instanceof DeauthorizeRefusedError),
  );
  await deauthorize(settings, tokens.accountId);
  await assert.rejects(() => deauthorize(settings, tokens.accountId), DeauthorizeRefusedError);
});

Deno.test("[payments] exchangeCode answers 502 when Stripe is down and 504 when it is slow", async () => {
  await using stripe = await startFakeStripe({ secretKey: SECRET, clientId: CLIENT });
  const down = {
    connectUrl: `http://127.0.0.1:${freePort()}`,
    secretKey: SECRET,
    clientId: CLIENT,
    timeoutMs: 1000,
  };
  await assert.rejects(() => exchangeCode(down, "ac_x_0123456789"), BadGatewayError);
  const slow = { ...down, connectUrl: stripe.url, timeoutMs: 200 };
  const began = performance.now();
  await assert.rejects(
    () => exchangeCode(slow, stripe.grant({ delayMs: 2000 }).code),
    GatewayTimeoutError,
  );
  assert.ok(performance.now() - began < 1500, "bounded by the timeout");
});

Deno.test("[payments] deauthorize disconnects, and reports Stripe's refusal as its own error", async () => {
  await using stripe = await startFakeStripe({ secretKey: SECRET, clientId: CLIENT });
  const settings = { connectUrl: stripe.url, secretKey: SECRET, clientId: CLIENT, timeoutMs: 1000 };
  const grant = stripe.grant();
  await exchangeCode(settings, grant.code);
  assert.ok(stripe.connected.has(grant.accountId));
  await deauthorize(settings, grant.accountId);
  assert.ok(!stripe.connected.has(grant.accountId));
  assert.deepEqual(stripe.calls.at(-1), {
    path: "/oauth/deauthorize",
    form: { client_id: CLIENT, stripe_user_id: grant.accountId },
    authorization: `Bearer ${SECRET}`,
  });
  await assert.rejects(() => deauthorize(settings, grant.accountId), (error: Error) => {
    assert.ok(error instanceof DeauthorizeRefusedError);
    assert.ok(!error.message.includes(grant.accountId));
    return true;
  });
});

Deno.test("[payments] scrub blanks what was sent and Stripe-shaped secrets", () => {
  assert.equal(
    scrub("code xyz-1 for acct_123 with sk_live_abc and rk_x_1", ["xyz-1"]),
    "code [redacted] for [redacted] with [redacted] and [redacted]",
  );
  assert.equal(scrub("pk_test_1 is public", []), "pk_test_1 is public");
  // A short value sent is blanked as a word, not inside other words.
  assert.equal(
    scrub("Authorization code does not exist: x", ["x"]),
    "Authorization code does not exist: [redacted]",
  );
  // A long one wherever it stands.
  assert.equal(scrub("code=xLONGVALUE1x", ["LONGVALUE1"]), "code=x[redacted]x");
});

/** A stand-in for Stripe that answers every call with `reply`, for answers the fake never gives. */
async function withStripeAnswering(
  reply: () => Response,
  run: (settings: StripeSettings) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    await request.body?.cancel();
    return reply();
  });
  try {
    const connectUrl = `http://127.0.0.1:${server.addr.port}`;
    await run({ connectUrl, secretKey: SECRET, clientId: CLIENT, timeoutMs: 1000 });
  } finally {
    await server.shutdown();
  }
}

const KEYS = {
  access_token: "sk_test_connected_0123456789",
  refresh_token: "rt_0123456789",
  stripe_user_id: "acct_0123456789",
  stripe_publishable_key: "pk_test_0123456789",
  scope: "read_write",
  livemode: false,
};

Deno.test("[payments] exchangeCode answers 502 to a Stripe answer it cannot store", async (t) => {
  const cases: [string, () => Response][] = [
    ["an HTML page with 200", () => new Response("<html>maintenance</html>", { status: 200 })],
    ["an HTML page with 400", () => new Response("<html>bad</html>", { status: 400 })],
    ["a 200 without the keys", () => Response.json({ token_type: "bearer" })],
    ["a 200 with keys that are not text", () => Response.json({ ...KEYS, stripe_user_id: 42 })],
    // Postgres refuses NUL in text: the client was told 400 "Cannot read a value", as if it
    // had sent something wrong, for Stripe's answer.
    [
      "a publishable key with a NUL",
      () => Response.json({ ...KEYS, stripe_publishable_key: "pk_test_01\u000023" }),
    ],
    ["a scope with a NUL", () => Response.json({ ...KEYS, scope: "read\u0000write" })],
  ];
  for (const [name, reply] of cases) {
    await t.step(name, async () => {
      await withStripeAnswering(reply, async (settings) => {
        await assert.rejects(() => exchangeCode(settings, "ac_0123456789"), (error: Error) => {
          assert.ok(error instanceof BadGatewayError, `${name}: ${error}`);
          assert.match(error.message, /^Cannot link Stripe: /);
          return true;
        });
      });
    });
  }
});

Deno.test("[payments] a redirect from Stripe's endpoint is not followed with the secrets", async (t) => {
  const posted: string[] = [];
  await using elsewhere = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (
    request,
  ) => {
    posted.push(await request.text() + (request.headers.get("authorization") ?? ""));
    return Response.json(KEYS);
  });
  const location = `http://127.0.0.1:${elsewhere.addr.port}/elsewhere`;
  for (const status of [301, 302, 307, 308]) {
    const redirect = () => new Response(null, { status, headers: { Location: location } });
    await t.step(`${status}: 502, nothing sent elsewhere`, async () => {
      await withStripeAnswering(redirect, async (settings) => {
        await assert.rejects(() => exchangeCode(settings, "ac_0123456789"), BadGatewayError);
        await assert.rejects(() => deauthorize(settings, "acct_0123456789"), BadGatewayError);
      });
      assert.deepEqual(posted, []);
    });
  }
});
