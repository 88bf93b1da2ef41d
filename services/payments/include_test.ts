import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
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

Deno.test("[payments] POST and PATCH of an authorization include the event; a bad include spends no code", async (t) => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const eventId = cast.event.id;

  await t.step(
    "POST with a bad include or fieldset: 400, Stripe not asked, nothing linked",
    async () => {
      const reply = await p.link(cast.owner.token, eventId, p.grant().code, "?include=nope");
      expectError(reply, 400, { parameter: "include" });
      const query = "?include=event&fields[event]=nope";
      const fields = await p.link(cast.owner.token, eventId, p.grant().code, query);
      expectError(fields, 400, { parameter: "fields[event]" });
      assert.equal(p.stripe.calls.length, 0);
      assert.equal((await p.sql`select count(*)::int as n from stripe_authorizations`)[0].n, 0);
    },
  );

  let id = "";
  await t.step("POST ?include=event: the 201 carries the event", async () => {
    const reply = await p.link(cast.owner.token, eventId, p.grant().code, "?include=event");
    expectStatus(reply, 201);
    id = reply.body.data.id;
    assert.deepEqual(reply.body.data.relationships.event.data, { type: "event", id: eventId });
    assert.deepEqual(reply.body.included.map((r: { id: string }) => r.id), [eventId]);
    assert.deepEqual(await p.leaks(), []);
  });

  await t.step("PATCH with a new code ?include=event&fields[event]=name", async () => {
    const query = "?include=event&fields[event]=name";
    const reply = await p.relink(cast.owner.token, id, p.grant().code, query);
    expectStatus(reply, 200);
    const [included] = reply.body.included;
    assert.equal(included.id, eventId);
    assert.deepEqual(Object.keys(included.attributes), ["name"]);
    assert.deepEqual(await p.leaks(), []);
  });

  await t.step("GET takes fields[event] beside include=event too (a 400 before)", async () => {
    const path = `/v1/stripe-authorizations/${id}?include=event&fields[event]=name,state`;
    const reply = await p.call("GET", path, { token: cast.owner.token });
    expectStatus(reply, 200);
    assert.deepEqual(Object.keys(reply.body.included[0].attributes).sort(), ["name", "state"]);
    const unknown = `/v1/stripe-authorizations/${id}?include=event&fields[event]=nope`;
    expectError(await p.call("GET", unknown, { token: cast.owner.token }), 400, {
      parameter: "fields[event]",
    });
  });
});
