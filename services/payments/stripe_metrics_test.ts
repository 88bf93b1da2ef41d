import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { metrics, renderPrometheus } from "@shared/metrics.ts";
import { startFakeStripe } from "./fake_stripe.ts";
import { deauthorize, exchangeCode, type StripeSettings } from "./stripe.ts";

const SECRET = "sk_test_platform_0123456789";
const CLIENT = "ca_test_client";

/** Every series of the Stripe families, keyed `operation/outcome` (counter) or `operation`. */
async function stripeFigures(): Promise<Map<string, number>> {
  const figures = new Map<string, number>();
  for (const family of await metrics.snapshot()) {
    for (const s of family.series) {
      if (family.name === "oe_stripe_requests") {
        figures.set(`${s.labels.operation}/${s.labels.outcome}`, s.value ?? 0);
      } else if (family.name === "oe_stripe_request_duration_seconds") {
        figures.set(s.labels.operation, s.count ?? 0);
      }
    }
  }
  return figures;
}

/** What changed between two readings (only the series that moved). */
function moved(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const changes: Record<string, number> = {};
  for (const [key, value] of after) {
    const by = value - (before.get(key) ?? 0);
    if (by) changes[key] = by;
  }
  return changes;
}

Deno.test("[payments] Stripe calls are counted by operation and outcome, with no secret", async (t) => {
  await using stripe = await startFakeStripe({ secretKey: SECRET, clientId: CLIENT });
  const settings: StripeSettings = {
    connectUrl: stripe.url,
    secretKey: SECRET,
    clientId: CLIENT,
    timeoutMs: 1000,
  };
  const grant = stripe.grant();
  const unknownCode = "ac_unknown_0123456789";

  await t.step("every series is there at 0 before any call", async () => {
    const text = renderPrometheus([{ labels: {}, families: await metrics.snapshot() }]);
    for (const operation of ["oauth_token", "deauthorize"]) {
      for (const outcome of ["ok", "error", "timeout", "unreachable"]) {
        const line = `oe_stripe_requests_total{operation="${operation}",outcome="${outcome}"} 0`;
        assert.ok(text.includes(line), line);
      }
      assert.ok(
        text.includes(`oe_stripe_request_duration_seconds_count{operation="${operation}"} 0`),
      );
    }
  });

  await t.step("a successful exchange and deauthorization are ok", async () => {
    const before = await stripeFigures();
    await exchangeCode(settings, grant.code);
    await deauthorize(settings, grant.accountId);
    assert.deepEqual(moved(before, await stripeFigures()), {
      "oauth_token/ok": 1,
      "oauth_token": 1,
      "deauthorize/ok": 1,
      "deauthorize": 1,
    });
  });

  await t.step("Stripe's refusal is an error, a slow Stripe a timeout", async () => {
    const before = await stripeFigures();
    await assert.rejects(() => exchangeCode(settings, unknownCode));
    await assert.rejects(() => deauthorize(settings, grant.accountId));
    const slow = { ...settings, timeoutMs: 200 };
    await assert.rejects(() => exchangeCode(slow, stripe.grant({ delayMs: 2000 }).code));
    assert.deepEqual(moved(before, await stripeFigures()), {
      "oauth_token/error": 1,
      "oauth_token/timeout": 1,
      "oauth_token": 2,
      "deauthorize/error": 1,
      "deauthorize": 1,
    });
  });

  await t.step("a Stripe that cannot be reached is unreachable", async () => {
    const before = await stripeFigures();
    const down = { ...settings, connectUrl: `http://127.0.0.1:${freePort()}` };
    await assert.rejects(() => exchangeCode(down, stripe.grant().code));
    assert.deepEqual(moved(before, await stripeFigures()), {
      "oauth_token/unreachable": 1,
      "oauth_token": 1,
    });
  });

  await t.step("the rendered metrics hold no code, key, token or account", async () => {
    const text = renderPrometheus([{ labels: {}, families: await metrics.snapshot() }]);
    const secrets = [
      SECRET,
      CLIENT,
      unknownCode,
      grant.code,
      grant.accessToken,
      grant.refreshToken,
      grant.accountId,
    ];
    for (const secret of secrets) assert.ok(!text.includes(secret), "a secret in the metrics");
    assert.doesNotMatch(text, /\b(?:ac|sk|rk|rt|acct|ca)_[A-Za-z0-9_]{6,}/);
  });
});
