import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

Deno.test("[discounts] POST /v1/discount-codes takes numbers and booleans sent as strings", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const eventId = cast.event.id;
  const ticketId = await system.createTicket(cast.owner.token, eventId, {
    type: "paid",
    price: "30",
  });

  await t.step("as the original's documentation sends them; answered with real types", async () => {
    const reply = await system.postCode(cast.owner.token, {
      eventId,
      ticketIds: [ticketId],
      attributes: {
        "value": "10.5",
        "tickets-number": "404",
        "min-quantity": "0",
        "max-quantity": "100",
        "is-active": "false",
      },
    });
    expectStatus(reply, 201);
    const attributes = reply.body.data.attributes;
    assert.equal(attributes.value, 10.5);
    assert.equal(attributes["tickets-number"], 404);
    assert.equal(attributes["min-quantity"], 0);
    assert.equal(attributes["is-active"], false);
  });

  await t.step("PATCH takes them too", async () => {
    const id = await system.createCode(cast.owner.token, { eventId, ticketIds: [ticketId] });
    const reply = await system.call("PATCH", `/v1/discount-codes/${id}`, {
      token: cast.owner.token,
      body: {
        data: { type: "discount-code", id, attributes: { "is-active": "0", "max-quantity": "5" } },
      },
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["is-active"], false);
    assert.equal(reply.body.data.attributes["max-quantity"], 5);
  });

  await t.step(
    "a value as a ticket's price is read: trailing zeros, a sign, a bare point",
    async () => {
      // As the catalog reads "30.000" for the ticket's price (lenientNumber), and as the original's
      // float() read them; still exact: no digit beyond the cents may be other than 0.
      const read: [string, number][] = [["7.500", 7.5], ["5.", 5], [".5", 0.5], ["+5", 5]];
      for (const [sent, value] of read) {
        const reply = await system.postCode(cast.owner.token, {
          eventId,
          ticketIds: [ticketId],
          attributes: { value: sent },
        });
        expectStatus(reply, 201, sent);
        assert.equal(reply.body.data.attributes.value, value, sent);
      }
      for (const sent of ["7.501", ".", "+", "5.0000000000000000001"]) {
        const reply = await system.postCode(cast.owner.token, {
          eventId,
          ticketIds: [ticketId],
          attributes: { value: sent },
        });
        expectError(reply, 422, { pointer: "/data/attributes/value" }, sent);
      }
    },
  );

  for (const bad of ["4.5", "abc", ""]) {
    await t.step(`tickets-number ${JSON.stringify(bad)} stays a 422 with its pointer`, async () => {
      const reply = await system.postCode(cast.owner.token, {
        eventId,
        ticketIds: [ticketId],
        attributes: { "tickets-number": bad },
      });
      expectError(reply, 422, { pointer: "/data/attributes/tickets-number" });
    });
  }
  await t.step(`is-active "yes please" stays a 422 with its pointer`, async () => {
    const reply = await system.postCode(cast.owner.token, {
      eventId,
      ticketIds: [ticketId],
      attributes: { "is-active": "yes please" },
    });
    expectError(reply, 422, { pointer: "/data/attributes/is-active" });
  });
});

Deno.test("[discounts] POST and PATCH /v1/discount-codes take date-times in every form the original read", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const eventId = cast.event.id;
  // marshmallow 2's grammar: `T` or a space, seconds optional, one-digit fields; an offset is
  // still required (naive times stay a 422, api-surface §7 of the README).
  const forms: [string, string][] = [
    ["2030-01-01 10:00:00+00:00", "2030-01-01T10:00:00.000Z"], // Python's str(datetime)
    ["2030-01-01 10:00:00.250+0530", "2030-01-01T04:30:00.250Z"],
    ["2030-01-01T10:00Z", "2030-01-01T10:00:00.000Z"],
    ["2030-01-01 10:00+08", "2030-01-01T02:00:00.000Z"],
    ["2030-1-5T9:05:00Z", "2030-01-05T09:05:00.000Z"],
  ];
  for (const [sent, stored] of forms) {
    await t.step(`valid-from ${JSON.stringify(sent)}`, async () => {
      const reply = await system.postCode(cast.owner.token, {
        eventId,
        attributes: { "valid-from": sent },
      });
      expectStatus(reply, 201, sent);
      assert.equal(reply.body.data.attributes["valid-from"], stored);
      const id = reply.body.data.id;
      const patched = await system.call("PATCH", `/v1/discount-codes/${id}`, {
        token: cast.owner.token,
        body: { data: { type: "discount-code", id, attributes: { "valid-till": sent } } },
      });
      // valid-till equal to valid-from: the rule's 422, so the form was read.
      expectError(patched, 422, { pointer: "/data/attributes/valid-till" });
    });
  }
  for (const sent of ["2030-01-01 10:00:00", "2030-01-01 25:00:00Z", "2030-13-01 10:00Z"]) {
    await t.step(`valid-from ${JSON.stringify(sent)} stays a 422 with its pointer`, async () => {
      const reply = await system.postCode(cast.owner.token, {
        eventId,
        attributes: { "valid-from": sent },
      });
      expectError(reply, 422, { pointer: "/data/attributes/valid-from" });
    });
  }
});

Deno.test("[discounts] POST and PATCH /v1/discount-codes ignore the read-only attributes a body carries", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  // What ember-data sends back on save: every attribute it read, the read-only ones too.
  const readOnly = {
    "created-at": "2001-01-01T00:00:00.000Z",
    "deleted-at": "2001-01-01T00:00:00.000Z",
    "used-count": 5,
  };
  const created = await system.postCode(cast.owner.token, {
    eventId: cast.event.id,
    attributes: readOnly,
  });
  expectStatus(created, 201);
  const { id, attributes } = created.body.data;
  assert.equal(attributes["deleted-at"], null, "created live, not in the trash");
  assert.equal(attributes["used-count"], 0);
  assert.notEqual(attributes["created-at"], readOnly["created-at"]);
  const patched = await system.call("PATCH", `/v1/discount-codes/${id}`, {
    token: cast.owner.token,
    body: { data: { type: "discount-code", id, attributes: { ...readOnly, value: 3 } } },
  });
  expectStatus(patched, 200);
  assert.deepEqual(
    {
      ...patched.body.data.attributes,
      value: attributes.value,
    },
    attributes,
    "only value changed",
  );
  assert.equal(patched.body.data.attributes.value, 3);
});
