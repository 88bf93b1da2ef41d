import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { codeBody, type DiscountsTestSystem, startDiscountsSystem } from "./_test_utils.ts";

/** A published event with its cast and one paid ticket. */
async function eventWithPaidTicket(system: DiscountsTestSystem) {
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const ticketId = await system.createTicket(cast.owner.token, eventId, {
    type: "paid",
    price: 20,
  });
  return { cast, eventId, ticketId };
}

Deno.test("[discounts] GET /v1/events?include=discount-codes,discount-code brings the codes, linked", async (t) => {
  await using system = await startDiscountsSystem();
  const { cast, eventId, ticketId } = await eventWithPaidTicket(system);
  const ticketCode = await system.createCode(cast.coorganizer.token, {
    eventId,
    ticketIds: [ticketId],
  });
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [eventId],
  });
  // Either spelling of a path, as the original took them: another service's resources too.
  const path = `/v1/events/${eventId}?include=discount_codes,discount-code`;

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

  await t.step("a fieldset in underscores trims them alike, as the original took it", async () => {
    const reply = await system.call(
      "GET",
      `/v1/events/${eventId}?include=discount-codes&fields[discount-code]=code,tickets_number`,
      { token: system.admin.token },
    );
    expectStatus(reply, 200);
    const [code] = reply.body.included;
    assert.deepEqual(Object.keys(code.attributes).sort(), ["code", "tickets-number"]);
  });

  await t.step(
    "fields[event] without them leaves the relationships out, as the catalog's do",
    async () => {
      // JSON:API: a fieldset of a type names every field its resources show; a relationship left
      // out takes its linkage with it (the one exception to full linkage).
      for (const path of [`/v1/events/${eventId}`, "/v1/events"]) {
        const reply = await system.call(
          "GET",
          `${path}?include=discount-codes,discount-code,event-topic&fields[event]=name`,
          { token: system.admin.token },
        );
        expectStatus(reply, 200);
        const [event] = [reply.body.data].flat();
        assert.deepEqual(Object.keys(event.relationships ?? {}), [], path);
        assert.deepEqual(Object.keys(event.attributes), ["name"], path);
      }
    },
  );

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

Deno.test("[discounts] POST and PATCH of a code include the catalog's event and tickets", async (t) => {
  await using system = await startDiscountsSystem();
  const { cast, eventId, ticketId } = await eventWithPaidTicket(system);
  const included = (body: { included?: { type: string; id: string }[] }) =>
    (body.included ?? []).map((r) => `${r.type}:${r.id}`).sort();
  let codeId = "";

  await t.step("POST ?include=event,tickets: the gateway merges them into the 201", async () => {
    const reply = await system.call("POST", "/v1/discount-codes?include=event,tickets", {
      token: cast.owner.token,
      body: codeBody({ eventId, ticketIds: [ticketId] }),
    });
    expectStatus(reply, 201);
    codeId = reply.body.data.id;
    assert.deepEqual(included(reply.body), [`event:${eventId}`, `ticket:${ticketId}`]);
  });

  await t.step("PATCH ?include=tickets&fields[ticket]=name", async () => {
    const reply = await system.call(
      "PATCH",
      `/v1/discount-codes/${codeId}?include=tickets&fields[ticket]=name`,
      {
        token: cast.owner.token,
        body: { data: { type: "discount-code", id: codeId, attributes: { value: 7 } } },
      },
    );
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes.value, 7);
    assert.deepEqual(included(reply.body), [`ticket:${ticketId}`]);
    assert.deepEqual(Object.keys(reply.body.included[0].attributes), ["name"]);
  });

  await t.step("a bad include or fieldset is a 400 and nothing is written", async () => {
    const count = async () =>
      (await system.dsql`select count(*)::int as n from discount_codes`)[0].n;
    const before = await count();
    const post = (query: string) =>
      system.call("POST", `/v1/discount-codes${query}`, {
        token: cast.owner.token,
        body: codeBody({ eventId, ticketIds: [ticketId] }),
      });
    expectError(await post("?include=nope"), 400, { parameter: "include" });
    // The catalog checks its types' fieldsets: asked before the insert, not after it.
    expectError(await post("?include=event&fields[event]=nope"), 400, {
      parameter: "fields[event]",
    });
    expectError(await post("?include=tickets&fields[ticket]=nope"), 400, {
      parameter: "fields[ticket]",
    });
    expectError(await post("?include=marketer&fields[user]=nope"), 400, {
      parameter: "fields[user]",
    });
    assert.equal(await count(), before);
    const patched = await system.call(
      "PATCH",
      `/v1/discount-codes/${codeId}?include=event&fields[event]=nope`,
      {
        token: cast.owner.token,
        body: { data: { type: "discount-code", id: codeId, attributes: { value: 9 } } },
      },
    );
    expectError(patched, 400, { parameter: "fields[event]" });
    const [row] = await system.dsql`select value from discount_codes where id = ${codeId}`;
    assert.equal(Number(row.value), 7, "the PATCH changed nothing");
  });
});

Deno.test("[discounts] a soft-deleted marketer stays in the linkage and is shown as no deleted user is", async () => {
  await using system = await startDiscountsSystem();
  const { cast, eventId } = await eventWithPaidTicket(system);
  const id = await system.createCode(cast.coorganizer.token, { eventId });
  const marketer = cast.coorganizer;
  expectStatus(
    await system.call("DELETE", `/v1/users/${marketer.id}`, { token: marketer.token }),
    200,
  );
  const read = (path: string) => system.call("GET", path, { token: cast.owner.token });
  const withMarketer = await read(`/v1/discount-codes/${id}?include=marketer`);
  expectStatus(withMarketer, 200);
  // Restoring the user brings them back as the marketer: the code keeps naming them.
  assert.deepEqual(withMarketer.body.data.relationships.marketer.data, {
    type: "user",
    id: marketer.id,
  });
  assert.deepEqual(withMarketer.body.included ?? [], []);
  const related = await read(`/v1/discount-codes/${id}/marketer`);
  expectStatus(related, 200);
  assert.equal(related.body.data, null);
  const linkage = await read(`/v1/discount-codes/${id}/relationships/marketer`);
  expectStatus(linkage, 200);
  assert.deepEqual(linkage.body.data, { type: "user", id: marketer.id });
});
