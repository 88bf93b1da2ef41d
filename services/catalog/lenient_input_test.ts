import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

Deno.test("[catalog] POST /v1/tickets and /v1/events take numbers and booleans as strings", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();

  await t.step('an event with can-pay-by-stripe "True"', async () => {
    const event = await system.createEvent(owner.token, {
      attributes: { "can-pay-by-stripe": "True" },
    });
    assert.equal(event.resource.attributes["can-pay-by-stripe"], true);
  });

  await t.step('a ticket with quantity "404" and price "12.50"', async () => {
    const event = await system.createEvent(owner.token);
    const id = await system.createTicket(owner.token, event.id, {
      type: "paid",
      quantity: "404",
      price: "12.50",
    });
    const reply = await system.call("GET", `/v1/tickets/${id}`, { token: owner.token });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes.quantity, 404);
    assert.equal(reply.body.data.attributes.price, 12.5);
  });

  await t.step('quantity "4.5" is a 422 pointing at it', async () => {
    const event = await system.createEvent(owner.token);
    const reply = await system.call("POST", "/v1/tickets", {
      token: owner.token,
      body: {
        data: {
          type: "ticket",
          attributes: { name: "Half", type: "free", quantity: "4.5" },
          relationships: { event: { data: { type: "event", id: event.id } } },
        },
      },
    });
    expectError(reply, 422, { pointer: "/data/attributes/quantity" });
  });
});
