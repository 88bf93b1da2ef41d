/**
 * The leak check itself: every payments test system scans its responses, log lines and facts
 * for the secrets it planted when it stops (see _test_utils.ts). Here: a run through every
 * route and failure, then proof that the scan would notice a leak.
 */
import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { startPaymentsSystem } from "./_test_utils.ts";
import { signStripePayload } from "./webhook_signature.ts";

Deno.test("[payments] no secret reaches a response, a log line or a fact", async () => {
  await using p = await startPaymentsSystem({ env: { STRIPE_TIMEOUT_MS: "200" } });
  const cast = await p.stripeEvent();
  const token = cast.owner.token;
  const created = await p.link(token, cast.event.id, p.grant().code);
  expectStatus(created, 201);
  const id = created.body.data.id;
  for (
    const path of [
      `/v1/stripe-authorizations/${id}`,
      `/v1/stripe-authorizations/${id}?include=event`,
      `/v1/stripe-authorizations/${id}/event`,
      `/v1/stripe-authorizations/${id}/relationships/event`,
      `/v1/events/${cast.event.id}/stripe-authorization`,
      `/v1/events/${cast.event.id}/relationships/stripe-authorization`,
    ]
  ) expectStatus(await p.call("GET", path, { token }), 200, path);
  const patch = (code: string) =>
    p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
      token,
      body: {
        data: { type: "stripe-authorization", id, attributes: { "stripe-auth-code": code } },
      },
    });
  expectStatus(await patch(p.grant().code), 200);
  expectStatus(await patch(`ac_refused_${crypto.randomUUID()}`), 422);
  expectStatus(await patch(p.grant({ delayMs: 1000 }).code), 504);
  const other = await p.stripeEvent();
  expectStatus(
    await p.link(other.owner.token, other.event.id, `ac_bad_${crypto.randomUUID()}`),
    422,
  );
  expectStatus(await p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token }), 200);
  const third = p.grant();
  expectStatus(await p.link(other.owner.token, other.event.id, third.code), 201);
  const payload = JSON.stringify({
    id: `evt_${crypto.randomUUID()}`,
    type: "account.application.deauthorized",
    account: third.accountId,
  });
  const secret = p.secrets().get("STRIPE_WEBHOOK_SECRET")!;
  const webhook = await p.call("POST", "/v1/webhooks/stripe", {
    body: payload,
    headers: {
      "Content-Type": "application/json",
      "Stripe-Signature": await signStripePayload(secret, payload),
    },
  });
  expectStatus(webhook, 200);
  await p.stripe.stop();
  expectStatus(await p.link(other.owner.token, other.event.id, p.grant().code), 502);
  // Logs were written along the way (the service is not silent), yet nothing leaked.
  assert.ok(p.logs.length > 0);
  assert.deepEqual(await p.leaks(), []);
});

Deno.test("[payments] the leak check notices a planted secret", async () => {
  await using p = await startPaymentsSystem();
  const grant = p.grant();
  p.responses.push(`oops ${grant.accessToken}`);
  p.logs.push(JSON.stringify({ fields: { key: p.secrets().get("STRIPE_SECRET_KEY") } }));
  assert.deepEqual(await p.leaks(), [
    "STRIPE_SECRET_KEY in a log line",
    "grant 0 access token in a response",
  ]);
  // Clean up so that stopping (which checks again) passes.
  p.responses.length = 0;
  p.logs.length = 0;
});

/** SHA-256 (hex) of the request as idempotency keyed it before: subject, path, query, bodies. */
async function plainRequestHash(subject: string, request: Record<string, unknown>) {
  const text = JSON.stringify([
    subject,
    request.path,
    request.query,
    request.body ?? null,
    request.rawBody ?? null,
  ]);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("[payments] a keyed POST /v1/stripe-authorizations keeps no plain hash of its code", async () => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const grant = p.grant();
  const subject = "payments.stripe-authorizations.create";
  // A copy of the request as payments receives it (a subscriber outside its queue group).
  const seen = p.system.bus.nc.subscribe(p.system.bus.subject(subject), { max: 1 });
  const request = (async () => {
    for await (const msg of seen) return msg.json<Record<string, unknown>>();
  })();
  const key = crypto.randomUUID();
  const post = () =>
    p.call("POST", "/v1/stripe-authorizations", {
      token: cast.owner.token,
      headers: { "Idempotency-Key": key },
      body: {
        data: {
          type: "stripe-authorization",
          attributes: { "stripe-auth-code": grant.code },
          relationships: { event: { data: { type: "event", id: cast.event.id } } },
        },
      },
    });
  const reply = await post();
  expectStatus(reply, 201);
  // The keyed digest still knows the same request again: the first answer, nothing linked twice.
  assert.equal((await post()).text, reply.text);
  const rows = await p.sql`select request_hash from idempotency_keys`;
  assert.equal(rows.length, 1, "the key was kept");
  // Whoever reads the table must not be able to check a guessed code against it offline.
  const guessed = await plainRequestHash(subject, (await request)!);
  assert.notEqual(rows[0].request_hash, guessed);
});
