/**
 * A DELETE of a stripe-authorization whose connection to Postgres is lost while Stripe is asked
 * to deauthorize: the account is disconnected at Stripe, the row's delete is rolled back, the
 * client gets 503. Repeating the DELETE converges: Stripe says the account is not connected (done
 * already), the row goes (200, one `deleted` fact), and a DELETE after that is a 404 (or, with the
 * same Idempotency-Key, the stored 200 again: the 503's transaction stored no answer).
 */
import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { expectStatus } from "@testing/system.ts";
import { holdTableLock } from "@testing/table_lock.ts";
import { linked, type PaymentsSystem, startPaymentsSystem } from "./_test_utils.ts";

/** Ends the payments sessions that sit in a transaction (the unlink waiting on Stripe). */
async function cutOffTransactions(p: PaymentsSystem): Promise<void> {
  await p.sql`select pg_terminate_backend(pid) from pg_stat_activity
    where datname = current_database() and state = 'idle in transaction'
      and application_name like 'payments %'`;
}

Deno.test("[payments] DELETE /v1/stripe-authorizations/{id} cut off by a lost Postgres after Stripe: a retry converges", async (t) => {
  await using p = await startPaymentsSystem();
  for (const keyed of [false, true]) {
    await t.step(keyed ? "with an Idempotency-Key" : "without a key", async () => {
      const { cast, grant, id } = await linked(p);
      const key = crypto.randomUUID();
      const unlink = (headers: Record<string, string> = keyed ? { "Idempotency-Key": key } : {}) =>
        p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token: cast.owner.token, headers });
      p.stripe.deauthorizeDelayMs = 500;
      const first = unlink();
      await eventually(
        () => p.stripe.calls.some((call) => call.form.stripe_user_id === grant.accountId),
        5_000,
        "the deauthorization to reach Stripe",
      );
      await cutOffTransactions(p);
      expectStatus(await first, 503);
      await eventually(() => !p.stripe.connected.has(grant.accountId), 5_000, "Stripe's answer");
      p.stripe.deauthorizeDelayMs = 0;
      // Until the retry the row stays, naming an account Stripe no longer connects.
      expectStatus(
        await p.call("GET", `/v1/stripe-authorizations/${id}`, { token: cast.owner.token }),
        200,
      );

      expectStatus(await unlink(), 200);
      if (keyed) expectStatus(await unlink(), 200); // the stored answer
      expectStatus(await unlink({}), 404);
      const deleted = (await p.readFacts()).filter((fact) =>
        fact.type === "payments.stripe-authorization.deleted" && fact.data.id === id
      );
      assert.equal(deleted.length, 1);
    });
  }
  assert.ok(p.logs.some((line) => line.includes("Stripe refused to deauthorize")));
});

// Deletes of the table wait (a migration building an index, say) while reads go on: the unlink
// read the row, disconnected the account at Stripe, then waited at its DELETE until the deadline
// and was answered 504, the account gone at Stripe and the event still linked (a review,
// 2026-12-05). The row is deleted before Stripe is asked now, so a 5xx leaves Stripe untouched.
Deno.test("[payments] DELETE /v1/stripe-authorizations/{id} held at its delete: a 5xx changed nothing at Stripe", async () => {
  await using p = await startPaymentsSystem({ env: { REQUEST_TIMEOUT_MS: "2000" } });
  const { cast, grant, id } = await linked(p);
  const lock = await holdTableLock(p.system.databaseUrl, "payments.stripe_authorizations");
  let reply;
  try {
    reply = await p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token: cast.owner.token });
  } finally {
    await lock.release();
  }
  assert.ok(reply.status >= 500, `status ${reply.status}: the delete was held until the deadline`);
  assert.ok(p.stripe.connected.has(grant.accountId), "told it failed, the account stays connected");
  const [row] = await p.sql`select id from stripe_authorizations where id = ${id}`;
  assert.ok(row, "and the authorization stays");
  // The retry, unheld, unlinks at Stripe and here.
  expectStatus(
    await p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token: cast.owner.token }),
    200,
  );
  assert.ok(!p.stripe.connected.has(grant.accountId));
});
