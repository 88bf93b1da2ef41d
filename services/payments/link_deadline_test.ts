/**
 * A link whose Stripe exchange answers just before the request's deadline: the change is refused
 * at commit (less than COMMIT_MARGIN_MS left) and answered 504. The exchanged account must not
 * stay connected without a row, also with an `Idempotency-Key`, whose change commits only after
 * the handler has returned (with the recorded answer, shared/idempotency.ts).
 */
import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { expectError, expectStatus } from "@testing/system.ts";
import { type PaymentsSystem, startPaymentsSystem } from "./_test_utils.ts";

/** When Stripe answers: 50 ms before the deadline the gateway sets for a request sent now. */
function justBeforeDeadline(): number {
  return Date.now() + 1950;
}

function linkBody(eventId: string, code: string) {
  return {
    data: {
      type: "stripe-authorization",
      attributes: { "stripe-auth-code": code },
      relationships: { event: { data: { type: "event", id: eventId } } },
    },
  };
}

function relinkBody(id: string, code: string) {
  return { data: { type: "stripe-authorization", id, attributes: { "stripe-auth-code": code } } };
}

function keyHeader(keyed: boolean): Record<string, string> {
  return keyed ? { "Idempotency-Key": crypto.randomUUID() } : {};
}

/** Resolves once the platform is not connected to `accountId` any more (a release is late). */
async function released(p: PaymentsSystem, accountId: string): Promise<void> {
  await eventually(() => !p.stripe.connected.has(accountId), 5_000, "the account to be released");
  await p.payments.idle();
}

Deno.test("[payments] a link refused at commit by its deadline leaves no account connected", async (t) => {
  await using p = await startPaymentsSystem({
    env: { REQUEST_TIMEOUT_MS: "2000", STRIPE_TIMEOUT_MS: "1990" },
  });
  for (const keyed of [false, true]) {
    await t.step(`POST ${keyed ? "with" : "without"} an Idempotency-Key: 504, no row`, async () => {
      const cast = await p.stripeEvent();
      const grant = p.grant({ answerAt: justBeforeDeadline() });
      const reply = await p.call("POST", "/v1/stripe-authorizations", {
        token: cast.owner.token,
        body: linkBody(cast.event.id, grant.code),
        headers: keyHeader(keyed),
      });
      expectError(reply, 504);
      await released(p, grant.accountId);
      const rows = await p.sql`select id from stripe_authorizations
        where event_id = ${cast.event.id}`;
      assert.equal(rows.length, 0);
    });
  }
  for (const keyed of [false, true]) {
    await t.step(
      `PATCH ${keyed ? "with" : "without"} an Idempotency-Key: 504, old link`,
      async () => {
        const cast = await p.stripeEvent();
        const first = p.grant();
        const created = await p.link(cast.owner.token, cast.event.id, first.code);
        expectStatus(created, 201);
        const id = created.body.data.id;
        const grant = p.grant({ answerAt: justBeforeDeadline() });
        const reply = await p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
          token: cast.owner.token,
          body: relinkBody(id, grant.code),
          headers: keyHeader(keyed),
        });
        expectError(reply, 504);
        await released(p, grant.accountId);
        assert.ok(p.stripe.connected.has(first.accountId), "the stored link's account stays");
        const [row] = await p.sql`select stripe_publishable_key from stripe_authorizations
        where id = ${id}`;
        assert.equal(row.stripe_publishable_key, first.publishableKey);
      },
    );
  }
});

// A gateway given a REQUEST_TIMEOUT_MS below payments' STRIPE_TIMEOUT_MS skips the check loadConfig
// makes within one process, and nothing said so (an operator review, 2026-12-06).
Deno.test("[payments] a Stripe change with less time left than a Stripe call warns, once", async () => {
  const warnings = (p: PaymentsSystem) => p.logs.filter((line) => line.includes("less time left"));
  {
    await using tight = await startPaymentsSystem({
      env: { REQUEST_TIMEOUT_MS: "2000", STRIPE_TIMEOUT_MS: "1990" },
    });
    for (let i = 0; i < 2; i++) {
      const cast = await tight.stripeEvent();
      expectStatus(await tight.link(cast.owner.token, cast.event.id, tight.grant().code), 201);
    }
    assert.equal(warnings(tight).length, 1, tight.logs.join("\n"));
    assert.match(
      warnings(tight)[0],
      /raise the gateway's REQUEST_TIMEOUT_MS above STRIPE_TIMEOUT_MS \(1990 ms here\)/,
    );
  }
  await using roomy = await startPaymentsSystem();
  const cast = await roomy.stripeEvent();
  expectStatus(await roomy.link(cast.owner.token, cast.event.id, roomy.grant().code), 201);
  assert.deepEqual(warnings(roomy), []);
});
