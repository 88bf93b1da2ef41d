/**
 * Stripe answering a code exchange with 200 and keys it cannot store (a NUL in one, the
 * publishable key missing): the client gets 502, nothing is stored, and the account the answer
 * names, connected to the platform by that exchange, is released rather than left without a row.
 */
import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { expectError } from "@testing/system.ts";
import { linked, type PaymentsSystem, startPaymentsSystem } from "./_test_utils.ts";

async function released(p: PaymentsSystem, accountId: string): Promise<void> {
  await eventually(() => !p.stripe.connected.has(accountId), 5_000, "the account to be released");
  await p.payments.idle();
}

Deno.test("[payments] a code exchange answered with keys that cannot be stored: 502, the account released", async (t) => {
  await using p = await startPaymentsSystem();
  await t.step(
    "POST, a NUL in the publishable key: 502 (a 400 blaming the client before)",
    async () => {
      const cast = await p.stripeEvent();
      const grant = p.grant();
      grant.publishableKey = "pk_test_01\u000023";
      const reply = await p.link(cast.owner.token, cast.event.id, grant.code);
      expectError(reply, 502);
      assert.match(reply.body.errors[0].detail, /^Cannot link Stripe: /);
      await released(p, grant.accountId);
      const rows = await p
        .sql`select id from stripe_authorizations where event_id = ${cast.event.id}`;
      assert.equal(rows.length, 0);
    },
  );
  await t.step(
    "PATCH, no publishable key: 502, the old link kept, the new account released",
    async () => {
      const { cast, id, grant: old } = await linked(p);
      const before = await p.sql`select account_lookup from stripe_authorizations where id = ${id}`;
      const grant = p.grant();
      grant.publishableKey = "";
      const reply = await p.relink(cast.owner.token, id, grant.code);
      expectError(reply, 502);
      await released(p, grant.accountId);
      const after = await p.sql`select account_lookup from stripe_authorizations where id = ${id}`;
      assert.deepEqual(after, before);
      assert.ok(p.stripe.connected.has(old.accountId), "the linked account stays connected");
    },
  );
});
