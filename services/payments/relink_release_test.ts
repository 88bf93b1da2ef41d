/**
 * A PATCH that re-links an authorization to another account releases the account it replaced
 * right after the reply, also with an `Idempotency-Key`, whose change commits only after the
 * handler has returned (shared/idempotency.ts): the release that ran before that commit found no
 * queued release to do, and the replaced account stayed connected until the next retry (30 s).
 */
import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { linked, startPaymentsSystem } from "./_test_utils.ts";

Deno.test("[payments] a re-link releases the replaced account at once, with or without a key", async (t) => {
  await using p = await startPaymentsSystem();
  for (const keyed of [false, true]) {
    await t.step(keyed ? "with an Idempotency-Key" : "without a key", async () => {
      const { cast, grant, id } = await linked(p);
      const next = p.grant();
      const reply = await p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
        token: cast.owner.token,
        headers: keyed ? { "Idempotency-Key": crypto.randomUUID() } : {},
        body: {
          data: { type: "stripe-authorization", id, attributes: { "stripe-auth-code": next.code } },
        },
      });
      expectStatus(reply, 200);
      await p.payments.idle();
      assert.equal(p.stripe.connected.has(grant.accountId), false, "the old account is connected");
      assert.equal(p.stripe.connected.has(next.accountId), true);
    });
  }
});
