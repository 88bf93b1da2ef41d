import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { linked, startPaymentsSystem } from "./_test_utils.ts";

/**
 * The original set `is-stripe-linked` in the request that linked or unlinked (api-surface §5:
 * "Success sets the event's is-stripe-linked"). The catalog keeps the flag from payments' facts,
 * which arrive a moment after the reply: the client's next read showed the old value, every time
 * (found by a review, 2026-12-04).
 */
Deno.test("[payments] the event read right after a link or an unlink shows is-stripe-linked as it now is", async () => {
  await using p = await startPaymentsSystem();
  for (let round = 0; round < 3; round++) {
    const { cast, id } = await linked(p);
    const token = cast.owner.token;
    const flag = async () => {
      const reply = await p.call("GET", `/v1/events/${cast.event.id}`, { token });
      expectStatus(reply, 200);
      return reply.body.data.attributes["is-stripe-linked"];
    };
    assert.equal(await flag(), true, "right after POST /v1/stripe-authorizations");
    expectStatus(await p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token }), 200);
    assert.equal(await flag(), false, "right after DELETE /v1/stripe-authorizations/{id}");
  }
});

Deno.test("[payments] POST /v1/stripe-authorizations?include=event includes the event linked", async () => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const reply = await p.link(cast.owner.token, cast.event.id, p.grant().code, "?include=event");
  expectStatus(reply, 201);
  const [event] = reply.body.included;
  assert.equal(event.id, cast.event.id);
  assert.equal(event.attributes["is-stripe-linked"], true);
});
