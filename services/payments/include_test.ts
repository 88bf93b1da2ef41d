import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { startPaymentsSystem } from "./_test_utils.ts";

Deno.test("[payments] GET /v1/events/{id}?include=stripe-authorization brings it to organizers only", async (t) => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const eventId = cast.event.id;
  const linked = await p.link(cast.owner.token, eventId, p.grant().code);
  expectStatus(linked, 201);
  const authorizationId = linked.body.data.id;
  const path = `/v1/events/${eventId}?include=stripe-authorization`;

  await t.step("the organizer gets the linkage and the resource, without secrets", async () => {
    const reply = await p.call("GET", path, { token: cast.organizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.relationships["stripe-authorization"].data, {
      type: "stripe-authorization",
      id: authorizationId,
    });
    assert.deepEqual(reply.body.included.map((r: { id: string }) => r.id), [authorizationId]);
    assert.deepEqual(await p.leaks(), []);
  });

  await t.step("a co-organizer sees the event but not the authorization", async () => {
    const reply = await p.call("GET", path, { token: cast.coorganizer.token });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.relationships["stripe-authorization"].data, null);
    assert.deepEqual(reply.body.included ?? [], []);
  });
});
