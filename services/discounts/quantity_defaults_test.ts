import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

Deno.test("[discounts] PATCH resets a null min-quantity or max-quantity to the defaults POST gives", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const token = cast.owner.token;
  const eventId = cast.event.id;
  const patch = (id: string, attributes: Record<string, unknown>) =>
    system.call("PATCH", `/v1/discount-codes/${id}`, {
      token,
      body: { data: { type: "discount-code", id, attributes } },
    });
  const quantities = (reply: { body: { data: { attributes: Record<string, unknown> } } }) => {
    const attributes = reply.body.data.attributes;
    return [attributes["min-quantity"], attributes["max-quantity"]];
  };

  await t.step("the attributes POST took are taken by PATCH too", async () => {
    const attributes = { "tickets-number": 10, "min-quantity": null, "max-quantity": null };
    const created = await system.postCode(token, { eventId, attributes });
    expectStatus(created, 201);
    assert.deepEqual(quantities(created), [1, 10]);
    const reply = await patch(created.body.data.id, attributes);
    expectStatus(reply, 200);
    assert.deepEqual(quantities(reply), [1, 10]);
  });
  await t.step("max-quantity null follows the stored tickets-number", async () => {
    const id = await system.createCode(token, {
      eventId,
      attributes: { "tickets-number": 30, "max-quantity": 20 },
    });
    const reply = await patch(id, { "max-quantity": null });
    expectStatus(reply, 200);
    assert.deepEqual(quantities(reply), [1, 30]);
    const [row] = await system.dsql`select max_quantity from discount_codes where id = ${id}`;
    assert.equal(row.max_quantity, 30);
  });
  await t.step("and the tickets-number sent with it; unlimited gives 100", async () => {
    const id = await system.createCode(token, { eventId, attributes: { "tickets-number": 30 } });
    const lower = await patch(id, { "tickets-number": 5, "max-quantity": null });
    expectStatus(lower, 200);
    assert.deepEqual(quantities(lower), [1, 5]);
    const unlimited = await patch(id, { "tickets-number": null, "max-quantity": null });
    expectStatus(unlimited, 200);
    assert.deepEqual(quantities(unlimited), [1, 100]);
  });
  // Found by the last look: POST named a defaulted max-quantity as the default in its 422, but
  // PATCH cited the default a null reset to as if the client had sent that number.
  await t.step("a 422 names a max-quantity reset by null as the default it is", async () => {
    const id = await system.createCode(token, { eventId, attributes: { "tickets-number": 30 } });
    const reply = await patch(id, { "min-quantity": 40, "max-quantity": null });
    expectError(reply, 422, { pointer: "/data/attributes/min-quantity" });
    assert.match(
      reply.body.errors[0].detail,
      /max-quantity \(30: the default when none is sent, tickets-number when under 100\)/,
    );
  });
  await t.step("min-quantity null never exceeds max-quantity", async () => {
    const id = await system.createCode(token, { eventId, attributes: { "tickets-number": 0 } });
    const reply = await patch(id, { "min-quantity": null });
    expectStatus(reply, 200);
    assert.deepEqual(quantities(reply), [0, 0]);
  });
});
