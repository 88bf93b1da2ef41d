import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

Deno.test("[discounts] GET /v1/events?include=discount-codes,discount-code brings the codes, linked", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const ticketId = await system.createTicket(cast.owner.token, eventId, {
    type: "paid",
    price: 20,
  });
  const ticketCode = await system.createCode(cast.coorganizer.token, {
    eventId,
    ticketIds: [ticketId],
  });
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [eventId],
  });
  const path = `/v1/events/${eventId}?include=discount-codes,discount-code`;

  await t.step("an admin gets both relationships with linkage and included codes", async () => {
    const reply = await system.call("GET", path, { token: system.admin.token });
    expectStatus(reply, 200);
    const rels = reply.body.data.relationships;
    assert.deepEqual(rels["discount-codes"].data, [{ type: "discount-code", id: ticketCode }]);
    assert.deepEqual(rels["discount-code"].data, { type: "discount-code", id: eventCode });
    assert.ok(rels["discount-codes"].links.related, "links stay");
    const included = reply.body.included.map((r: { id: string }) => r.id).sort();
    assert.deepEqual(included, [ticketCode, eventCode].sort());
  });

  await t.step("a co-organizer gets the ticket codes, not the admin-only event code", async () => {
    const reply = await system.call("GET", path, { token: cast.coorganizer.token });
    expectStatus(reply, 200);
    const rels = reply.body.data.relationships;
    assert.deepEqual(rels["discount-codes"].data, [{ type: "discount-code", id: ticketCode }]);
    assert.equal(rels["discount-code"].data, null, "nothing included for them: empty linkage");
    assert.deepEqual(reply.body.included.map((r: { id: string }) => r.id), [ticketCode]);
  });

  await t.step("anyone else sees the event and no codes", async () => {
    const reply = await system.call("GET", path, { token: cast.stranger.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.included ?? [], []);
    assert.deepEqual(reply.body.data.relationships["discount-codes"].data, []);
  });

  await t.step("a ticket includes the codes attached to it, for its co-organizers", async () => {
    const path = `/v1/tickets/${ticketId}?include=discount-codes`;
    const reply = await system.call("GET", path, { token: cast.coorganizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.relationships["discount-codes"].data, [
      { type: "discount-code", id: ticketCode },
    ]);
    assert.deepEqual(reply.body.included.map((r: { id: string }) => r.id), [ticketCode]);
  });

  await t.step("fields[discount-code] trims the codes another service added", async () => {
    const reply = await system.call(
      "GET",
      `/v1/events/${eventId}?include=discount-codes&fields[discount-code]=code,value`,
      { token: system.admin.token },
    );
    expectStatus(reply, 200);
    const [code] = reply.body.included;
    assert.deepEqual(Object.keys(code.attributes).sort(), ["code", "value"]);
    assert.deepEqual(code.relationships ?? {}, {});
    // The event itself keeps every field: the fieldset names another type.
    assert.ok(reply.body.data.attributes.name);
  });

  await t.step("lists include them too", async () => {
    const reply = await system.call("GET", "/v1/events?include=discount-codes", {
      token: system.admin.token,
    });
    expectStatus(reply, 200);
    const event = reply.body.data.find((e: { id: string }) => e.id === eventId);
    assert.deepEqual(event.relationships["discount-codes"].data, [
      { type: "discount-code", id: ticketCode },
    ]);
  });
});
