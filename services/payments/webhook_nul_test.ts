import assert from "node:assert/strict";
import { payments } from "@shared/subjects.ts";
import { startPaymentsSystem } from "./_test_utils.ts";
import { signStripePayload } from "./webhook_signature.ts";

Deno.test("[payments] POST /v1/webhooks/stripe answers 400, not 500, to a signed event with a NUL id", async (t) => {
  await using p = await startPaymentsSystem();
  const secret = p.secrets().get("STRIPE_WEBHOOK_SECRET")!;
  const payload = JSON.stringify({
    id: "evt_\u0000nul",
    object: "event",
    type: "account.updated",
    created: Math.floor(Date.now() / 1000),
  });
  const signature = await signStripePayload(secret, payload);
  const stored = async () =>
    (await p.sql`select count(*)::int as count from stripe_webhook_events`)[0].count as number;
  const before = await stored();

  await t.step("through the gateway: 400 before payments", async () => {
    const reply = await p.call("POST", "/v1/webhooks/stripe", {
      body: payload,
      headers: { "Content-Type": "application/json", "Stripe-Signature": signature },
    });
    assert.equal(reply.status, 400);
    assert.match(reply.body.errors[0].detail, /NUL/);
  });
  await t.step("straight to payments on the bus: 400 after the signature check", async () => {
    const reply = await p.system.bus.forward(payments.webhook, {
      actor: null,
      params: {},
      path: "/v1/webhooks/stripe",
      query: {},
      requestId: "nul-test",
      rawBody: payload,
      headers: { "stripe-signature": signature },
    });
    assert.equal(reply.status, 400);
    assert.match(new TextDecoder().decode(reply.body), /NUL character/);
  });
  assert.equal(await stored(), before, "nothing recorded");
});
