import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { linked, type PaymentsSystem, startPaymentsSystem } from "./_test_utils.ts";
import { signStripePayload } from "./webhook_signature.ts";

function deauthorizedEvent(
  account: string,
  id = `evt_${crypto.randomUUID()}`,
  created = Math.floor(Date.now() / 1000),
  extra: Record<string, unknown> = {},
) {
  return JSON.stringify({
    id,
    object: "event",
    type: "account.application.deauthorized",
    account,
    created,
    data: { object: { id: "ca_platform", object: "application", name: "Open Event" } },
    ...extra,
  });
}

async function send(
  p: PaymentsSystem,
  payload: string,
  signature?: string | null,
) {
  const secret = p.secrets().get("STRIPE_WEBHOOK_SECRET")!;
  const header = signature === undefined ? await signStripePayload(secret, payload) : signature;
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (header !== null) headers["Stripe-Signature"] = header;
  return await p.call("POST", "/v1/webhooks/stripe", { body: payload, headers });
}

async function count(p: PaymentsSystem): Promise<number> {
  const [{ count }] = await p.sql`select count(*)::int as count from stripe_authorizations`;
  return count;
}

Deno.test("[payments] POST /v1/webhooks/stripe removes a deauthorized account's authorizations", async (t) => {
  await using p = await startPaymentsSystem();
  const first = await linked(p);
  // A second event on the same Stripe account, and an unrelated one.
  const other = await p.stripeEvent();
  const same = p.grant({ accountId: first.grant.accountId });
  const second = await p.link(other.owner.token, other.event.id, same.code);
  expectStatus(second, 201);
  const unrelated = await linked(p);
  const payload = deauthorizedEvent(first.grant.accountId);
  await t.step("a signed event: 200, both authorizations of the account gone", async () => {
    const reply = await send(p, payload);
    expectStatus(reply, 200);
    assert.equal(reply.headers.get("Content-Type"), "application/json");
    assert.deepEqual(reply.body, { received: true });
    assert.equal(await count(p), 1);
    const [left] = await p.sql`select id from stripe_authorizations`;
    assert.equal(String(left.id), unrelated.id);
    // Operators see which rows went (ids are no secret; the logger redacts credential fields).
    const line = p.logs.find((l) => l.includes("authorizations removed"))!;
    assert.deepEqual(JSON.parse(line).fields.ids.sort(), [first.id, second.body.data.id].sort());
  });
  await t.step("facts by the system, and the events unlinked", async () => {
    const facts = (await p.readFacts()).filter((f) =>
      f.source === "payments" && f.type.endsWith(".deleted")
    );
    assert.deepEqual(
      facts.map((f) => f.data.event).sort(),
      [first.cast.event.id, other.event.id].sort(),
    );
    for (const fact of facts) assert.equal(fact.actorid, undefined);
    for (const eventId of [first.cast.event.id, other.event.id]) {
      // The catalog follows the facts a moment later: a generous bound, as in eventually().
      const deadline = Date.now() + 10_000;
      let flag = true;
      while (flag && Date.now() < deadline) {
        const reply = await p.call("GET", `/v1/events/${eventId}`, {
          token: p.system.admin.token,
        });
        flag = reply.body.data.attributes["is-stripe-linked"];
        if (flag) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.equal(flag, false);
    }
  });
  await t.step("the same event again (a replay): 200, no second effect", async () => {
    const factsBefore = (await p.readFacts()).length;
    // Link the account again, then replay the old event: the new link must survive.
    const again = p.grant({ accountId: first.grant.accountId });
    expectStatus(await p.link(first.cast.owner.token, first.cast.event.id, again.code), 201);
    const reply = await send(p, payload);
    expectStatus(reply, 200);
    assert.deepEqual(reply.body, { received: true, duplicate: true });
    assert.equal(await count(p), 2);
    const facts = await p.readFacts();
    assert.equal(facts.filter((f) => f.type.endsWith(".deleted")).length, 2);
    assert.ok(facts.length > factsBefore);
  });
  await t.step("Stripe was not called for any of it", () => {
    assert.ok(p.stripe.calls.every((call) => call.path === "/oauth/token"));
  });
});

Deno.test("[payments] a deauthorization delivered after the account was linked again leaves the new link", async () => {
  await using p = await startPaymentsSystem();
  const first = await linked(p);
  const other = await p.stripeEvent();
  const again = p.grant({ accountId: first.grant.accountId });
  expectStatus(await p.link(other.owner.token, other.event.id, again.code), 201);
  // The first event's link is a minute older than the deauthorization; the second is newer.
  await p.sql`update stripe_authorizations set updated_at = now() - interval '1 hour'
    where id = ${first.id}`;
  const minuteAgo = Math.floor(Date.now() / 1000) - 60;
  const factsBefore = (await p.readFacts()).length;

  const reply = await send(p, deauthorizedEvent(first.grant.accountId, undefined, minuteAgo));
  expectStatus(reply, 200);
  const left = await p.sql`select event_id from stripe_authorizations`;
  assert.deepEqual(left.map((row) => String(row.event_id)), [other.event.id]);
  const facts = (await p.readFacts()).slice(factsBefore);
  assert.deepEqual(
    facts.filter((f) => f.type.endsWith(".deleted")).map((f) => f.data.event),
    [first.cast.event.id],
  );

  // A deauthorization as recent as the link (Stripe counts whole seconds) removes it.
  expectStatus(await send(p, deauthorizedEvent(first.grant.accountId)), 200);
  assert.equal(await count(p), 0);
});

Deno.test("[payments] a deauthorization of the other mode leaves the link of this one", async () => {
  // Stripe sends a live Connect endpoint the test-mode events of accounts connected in live
  // mode too, and asks platforms to read `livemode`: a test connection's end is not the live one's.
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const grant = p.grant({ livemode: true });
  const created = await p.link(cast.owner.token, cast.event.id, grant.code);
  expectStatus(created, 201);
  const testMode = deauthorizedEvent(grant.accountId, undefined, undefined, { livemode: false });
  expectStatus(await send(p, testMode), 200);
  assert.equal(await count(p), 1, "a test-mode deauthorization removed the live link");
  const link = await p.call("GET", `/v1/events/${cast.event.id}/stripe-authorization`, {
    token: cast.owner.token,
  });
  expectStatus(link, 200);

  const liveMode = deauthorizedEvent(grant.accountId, undefined, undefined, { livemode: true });
  expectStatus(await send(p, liveMode), 200);
  assert.equal(await count(p), 0);
});

Deno.test("[payments] POST /v1/webhooks/stripe refuses bad and stale signatures with 400", async (t) => {
  await using p = await startPaymentsSystem();
  const { grant } = await linked(p);
  const payload = deauthorizedEvent(grant.accountId);
  const now = Math.floor(Date.now() / 1000);
  const secret = p.secrets().get("STRIPE_WEBHOOK_SECRET")!;
  const cases: [string, string | null][] = [
    ["no Stripe-Signature header", null],
    ["a signature by another secret", await signStripePayload("whsec_wrong", payload)],
    ["a stale signature (6 minutes)", await signStripePayload(secret, payload, now - 360)],
    ["garbage", "nonsense"],
    ["a signature of another body", await signStripePayload(secret, payload + "\n")],
  ];
  for (const [name, header] of cases) {
    await t.step(name, async () => {
      expectError(await send(p, payload, header), 400, { header: "Stripe-Signature" });
    });
  }
  await t.step("nothing was removed", async () => {
    assert.equal(await count(p), 1);
  });
  await t.step("a signed body that is not a Stripe event: 400", async () => {
    expectError(await send(p, "not json"), 400);
    expectError(await send(p, JSON.stringify({ hello: "world" })), 400);
  });
});

Deno.test("[payments] POST /v1/webhooks/stripe points a signed event's bad field out in its 400", async (t) => {
  await using p = await startPaymentsSystem();
  const { grant } = await linked(p);
  const event = (fields: Record<string, unknown>) =>
    JSON.stringify({ ...JSON.parse(deauthorizedEvent(grant.accountId)), ...fields });
  const cases: [string, string, string, RegExp][] = [
    ["a body that is not JSON", "not json", "", /not JSON/],
    ["a JSON array", "[]", "", /not a JSON object/],
    ["null", "null", "", /not a JSON object/],
    ["no id", event({ id: undefined }), "/id", /\bid\b/],
    ["a numeric id", event({ id: 12 }), "/id", /\bid\b/],
    ["an id of 256 characters", event({ id: "e".repeat(256) }), "/id", /255/],
    ["a null type", event({ type: null }), "/type", /\btype\b/],
    ["an empty type", event({ type: "" }), "/type", /\btype\b/],
    ["a created time after 9999", event({ created: 1e13 }), "/created", /created/],
  ];
  for (const [name, payload, pointer, detail] of cases) {
    await t.step(name, async () => {
      const reply = await send(p, payload);
      expectError(reply, 400, { pointer }, name);
      assert.match(reply.body.errors[0].detail, detail);
    });
  }
  assert.equal(await count(p), 1, "the link stays");
});

Deno.test("[payments] POST /v1/webhooks/stripe acknowledges harmless events with 200", async (t) => {
  await using p = await startPaymentsSystem();
  await linked(p);
  await t.step("an account nobody linked", async () => {
    const reply = await send(p, deauthorizedEvent("acct_nobody_knows"));
    expectStatus(reply, 200);
    assert.deepEqual(reply.body, { received: true });
  });
  await t.step("another event type", async () => {
    const payload = JSON.stringify({ id: "evt_other_1", type: "charge.succeeded", data: {} });
    expectStatus(await send(p, payload), 200);
  });
  await t.step("nothing changed", async () => {
    assert.equal(await count(p), 1);
    const facts = await p.readFacts();
    assert.equal(facts.filter((f) => f.type.endsWith(".deleted")).length, 0);
  });
});

Deno.test("[payments] POST /v1/webhooks/stripe answers 503 without a webhook secret", async () => {
  await using p = await startPaymentsSystem({ omit: ["webhookSecret"] });
  expectError(await send(p, deauthorizedEvent("acct_1"), "t=1,v1=00"), 503);
});

Deno.test("[payments] POST /v1/webhooks/stripe forgets handled event ids after 30 days", async () => {
  await using p = await startPaymentsSystem();
  const old = `evt_old_${crypto.randomUUID()}`;
  const recent = `evt_recent_${crypto.randomUUID()}`;
  await p.sql`insert into stripe_webhook_events (id, type, received_at) values
    (${old}, 'account.updated', now() - interval '31 days'),
    (${recent}, 'account.updated', now() - interval '29 days')`;
  const fresh = `evt_${crypto.randomUUID()}`;
  expectStatus(await send(p, deauthorizedEvent("acct_nobody", fresh)), 200);
  const ids = (await p.sql`select id from stripe_webhook_events`).map((row) => row.id).sort();
  assert.deepEqual(ids, [fresh, recent].sort(), "the 31-day-old id is pruned, the others kept");
  // A replay inside the window is still recognized.
  const reply = await send(p, deauthorizedEvent("acct_nobody", recent));
  assert.deepEqual(reply.body, { received: true, duplicate: true });
});

Deno.test("[payments] a signed deauthorization whose created time no date holds is a 400", async () => {
  await using p = await startPaymentsSystem();
  const { grant } = await linked(p);
  for (const created of [Number.MAX_SAFE_INTEGER, 1e13]) {
    const reply = await send(p, deauthorizedEvent(grant.accountId, undefined, created));
    expectError(reply, 400, {}, `created ${created}`);
  }
  assert.equal(await count(p), 1, "the link stays");
});

// Found by a hostile-input hunt: within the bound, but the margin added to it was not, and
// Postgres refused the date: a 400 "Cannot read a value: it has the wrong format", no pointer.
Deno.test("[payments] a signed deauthorization created in the last seconds of 9999 is taken", async () => {
  await using p = await startPaymentsSystem();
  const { grant } = await linked(p);
  const lastSecond = Date.UTC(9999, 11, 31, 23, 59, 59) / 1000;
  const reply = await send(p, deauthorizedEvent(grant.accountId, undefined, lastSecond));
  expectStatus(reply, 200);
  assert.equal(await count(p), 0, "the link made before it is removed");
});
