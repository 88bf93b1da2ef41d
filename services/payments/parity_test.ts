import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { startPaymentsSystem } from "./_test_utils.ts";

Deno.test("[payments] GET /v1/stripe-authorizations/{id} shows the original's deleted-at, always null", async () => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const linked = await p.link(cast.owner.token, cast.event.id, p.grant().code);
  expectStatus(linked, 201);
  assert.equal(linked.body.data.attributes["deleted-at"], null);
  const id = linked.body.data.id;
  const reply = await p.call("GET", `/v1/stripe-authorizations/${id}`, {
    token: cast.owner.token,
  });
  expectStatus(reply, 200);
  assert.deepEqual(Object.keys(reply.body.data.attributes).sort(), [
    "deleted-at",
    "stripe-publishable-key",
  ]);
  assert.equal(reply.body.data.attributes["deleted-at"], null);
});
