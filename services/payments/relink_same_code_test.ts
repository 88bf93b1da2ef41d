/**
 * open-event-frontend's event wizard saves the event's Stripe authorization on every save while
 * its `stripeAuthCode` is set: after the POST, each save PATCHes the code the POST already
 * exchanged. Stripe refuses a code twice, so that PATCH answered 422 and broke the wizard
 * (reproduced against the running system); the row keeps a keyed digest of its code instead.
 */
import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { linked, type PaymentsSystem, startPaymentsSystem } from "./_test_utils.ts";

/** The wizard's PATCH: the code it keeps, the publishable key it read, the event. */
function wizardSave(p: PaymentsSystem, id: string, eventId: string, code: string) {
  return p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
    token: p.system.admin.token,
    body: {
      data: {
        id,
        type: "stripe-authorization",
        attributes: { "stripe-auth-code": code, "stripe-publishable-key": "pk_test_kept" },
        relationships: { event: { data: { type: "event", id: eventId } } },
      },
    },
  });
}

async function stored(p: PaymentsSystem, id: string) {
  const [row] = await p.sql`select * from stripe_authorizations where id = ${id}`;
  return row;
}

async function updateFacts(p: PaymentsSystem, id: string): Promise<number> {
  const facts = await p.readFacts();
  return facts.filter((f) => f.type === "payments.stripe-authorization.updated" && f.data.id === id)
    .length;
}

async function sha256Hex(text: string): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A PATCH that must change nothing: 200 with the row as it was, Stripe and the bus untouched. */
async function expectUnchanged(
  p: PaymentsSystem,
  reply: Awaited<ReturnType<PaymentsSystem["call"]>>,
  options: { id: string; before: Record<string, unknown>; calls: number; facts: number },
): Promise<void> {
  expectStatus(reply, 200);
  assert.equal(reply.body.data.id, options.id);
  assert.equal(
    reply.body.data.attributes["stripe-publishable-key"],
    options.before.stripe_publishable_key,
  );
  assert.equal(p.stripe.calls.length, options.calls, "Stripe was not asked");
  assert.deepEqual(await stored(p, options.id), options.before, "the row is unchanged");
  await p.payments.idle();
  assert.equal(await updateFacts(p, options.id), options.facts, "no fact");
}

Deno.test("[payments] PATCH /v1/stripe-authorizations/{id} with the code it was linked with changes nothing", async (t) => {
  await using p = await startPaymentsSystem();
  const { cast, grant, id } = await linked(p);
  await t.step(
    "the row keeps a keyed digest of its code, not the code or a plain hash",
    async () => {
      const row = await stored(p, id);
      assert.equal(typeof row.code_digest, "string");
      assert.ok(!row.code_digest.includes(grant.code));
      assert.notEqual(row.code_digest, await sha256Hex(grant.code));
    },
  );
  await t.step("the POSTed code again (the wizard's second save): 200, nothing else", async () => {
    const before = await stored(p, id);
    const options = { id, before, calls: p.stripe.calls.length, facts: await updateFacts(p, id) };
    await expectUnchanged(p, await wizardSave(p, id, cast.event.id, grant.code), options);
    await expectUnchanged(p, await wizardSave(p, id, cast.event.id, grant.code), options);
    assert.ok(p.stripe.connected.has(grant.accountId), "the account stays connected");
  });
  const second = p.grant();
  await t.step("a new code: exchanged and stored, as before", async () => {
    const before = await stored(p, id);
    const calls = p.stripe.calls.length;
    const facts = await updateFacts(p, id);
    const reply = await wizardSave(p, id, cast.event.id, second.code);
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["stripe-publishable-key"], second.publishableKey);
    assert.equal(p.stripe.calls[calls]?.form.code, second.code);
    const after = await stored(p, id);
    assert.notEqual(after.code_digest, before.code_digest);
    assert.notDeepEqual(after.stripe_user_id, before.stripe_user_id);
    await p.payments.idle();
    assert.equal(await updateFacts(p, id), facts + 1);
    assert.ok(!p.stripe.connected.has(grant.accountId), "the replaced account was released");
  });
  await t.step("the re-linked code again: 200, nothing else", async () => {
    const before = await stored(p, id);
    const options = { id, before, calls: p.stripe.calls.length, facts: await updateFacts(p, id) };
    await expectUnchanged(p, await wizardSave(p, id, cast.event.id, second.code), options);
  });
  await t.step(
    "the code the row was linked with before: exchanged, Stripe refuses (422)",
    async () => {
      const before = await stored(p, id);
      const calls = p.stripe.calls.length;
      expectError(await wizardSave(p, id, cast.event.id, grant.code), 422);
      assert.equal(p.stripe.calls.length, calls + 1);
      assert.deepEqual(await stored(p, id), before);
    },
  );
});

Deno.test("[payments] PATCH /v1/stripe-authorizations/{id} of a row linked before code digests exchanges its code", async () => {
  await using p = await startPaymentsSystem();
  const { cast, grant, id } = await linked(p);
  // As migration 0003 leaves the rows linked before it.
  await p.sql`update stripe_authorizations set code_digest = null where id = ${id}`;
  const before = await stored(p, id);
  const calls = p.stripe.calls.length;
  const reply = await wizardSave(p, id, cast.event.id, grant.code);
  expectError(reply, 422);
  assert.match(reply.body.errors[0].detail, /already been used/);
  assert.equal(p.stripe.calls.length, calls + 1, "the code went to Stripe, as before");
  assert.deepEqual(await stored(p, id), before);
  // A new code links it again, and from then on the row has a digest.
  const next = p.grant();
  expectStatus(await wizardSave(p, id, cast.event.id, next.code), 200);
  assert.equal(typeof (await stored(p, id)).code_digest, "string");
});
