import assert from "node:assert/strict";
import type { Fact } from "@shared/facts.ts";
import { eventually } from "@testing/eventually.ts";
import { exampleFact } from "@testing/facts.ts";
import { applyCatalogFacts } from "./follow_catalog.ts";
import { discountsRedemption } from "@shared/subjects.ts";
import { expectError, expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

const published = { attributes: { state: "published" } };
const JSON_TYPE = { "Content-Type": "application/json" };

Deno.test("[discounts] GET /v1/events/{id}/discount-codes/{code} is the public checkout lookup", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast(published);
  const other = await system.eventWithCast(published);
  const make = (code: string, attributes: Record<string, unknown> = {}, eventId = cast.event.id) =>
    system.createCode(cast.owner.token, { eventId, attributes: { code, ...attributes } });
  await make("OPEN");
  await make("PAUSED", { "is-active": false });
  await make("SOON", { "valid-from": "2099-01-01T00:00:00Z" });
  await make("GONE", {
    "valid-from": "2001-01-01T00:00:00Z",
    "valid-till": "2001-02-01T00:00:00Z",
  });
  await make("WINDOW", {
    "valid-from": "2001-01-01T00:00:00Z",
    "valid-till": "2099-01-01T00:00:00Z",
  });
  await make("USEDUP", { "tickets-number": 1 });
  const usedUp = await system.dsql`select id from discount_codes where code = 'USEDUP'`;
  await system.bus.request(discountsRedemption.reserve, {
    codeId: String(usedUp[0].id),
    orderId: "o1",
    quantity: 1,
  });
  await system.createCode(other.owner.token, {
    eventId: other.event.id,
    attributes: { code: "ELSEWHERE" },
  });
  const lookup = (code: string, event = cast.event.id) =>
    system.call("GET", `/v1/events/${event}/discount-codes/${code}`);

  await t.step("200 for an active code in its window, any case, by id or identifier", async () => {
    for (const path of ["OPEN", "open", "WINDOW", "%20OPEN%20"]) {
      const reply = await lookup(path);
      expectStatus(reply, 200, path);
      assert.equal(reply.body.data.type, "discount-code");
    }
    expectStatus(await lookup("OPEN", cast.event.identifier), 200);
  });
  await t.step(
    "as open-event-frontend asks (ember-data's queryRecord puts its query in the URL)",
    async () => {
      const { identifier } = cast.event;
      const reply = await system.call(
        "GET",
        `/v1/events/${identifier}/discount-codes/OPEN?code=OPEN&eventIdentifier=${identifier}` +
          "&include=event,tickets",
      );
      expectStatus(reply, 200);
      assert.equal(reply.body.data.attributes.code, "OPEN");
    },
  );
  await t.step("422 inactive, not yet valid, expired: the detail says which", async () => {
    const cases: [string, RegExp][] = [
      ["PAUSED", /not active/],
      ["SOON", /not valid before 2099-01-01T00:00:00.000Z/],
      ["GONE", /expired at 2001-02-01T00:00:00.000Z/],
    ];
    for (const [code, detail] of cases) {
      const reply = await lookup(code);
      expectError(reply, 422, {}, code);
      assert.match(reply.body.errors[0].detail, detail);
      // The code is a path segment; JSON:API's source.parameter names a query parameter.
      assert.equal(reply.body.errors[0].source, undefined, `${code}: no source`);
    }
  });
  await t.step(
    "200 for a used-up code, its uses shown (the original refused no more)",
    async () => {
      const reply = await lookup("USEDUP");
      expectStatus(reply, 200);
      assert.equal(reply.body.data.attributes["used-count"], 1);
      assert.equal(reply.body.data.attributes["tickets-number"], 1);
    },
  );
  await t.step(
    "404 for unknown codes, another event's code, odd text and unknown events",
    async () => {
      for (const code of ["NOPE", "ELSEWHERE", "x'%20or%20'1'='1", "%C3%89T%C3%89", "a%20b"]) {
        expectError(await lookup(code), 404, {}, code);
      }
      expectError(await lookup("OPEN", "99999999"), 404);
      expectError(await lookup("OPEN", "not-an-event"), 404);
    },
  );
  await t.step("a draft event's codes are not found by outsiders", async () => {
    const draft = await system.createEvent(cast.owner.token);
    await make("DRAFTY", {}, draft.id);
    expectError(await lookup("DRAFTY", draft.id), 404);
    expectStatus(
      await system.call("GET", `/v1/events/${draft.id}/discount-codes/DRAFTY`, {
        token: cast.owner.token,
      }),
      200,
    );
  });
});

Deno.test("[discounts] POST /v1/orders/calculate-amount previews prices exactly", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast(published);
  const token = cast.owner.token;
  const a = await system.createTicket(token, cast.event.id, { price: "19.99" });
  const b = await system.createTicket(token, cast.event.id, { price: "0.10" });
  const c = await system.createTicket(token, cast.event.id, { price: 50 });
  const free = await system.createTicket(token, cast.event.id, { type: "free", price: 0 });
  const preview = (body: unknown) =>
    system.call("POST", "/v1/orders/calculate-amount", {
      body,
      headers: { "Content-Type": "application/json" },
    });
  const code = (attributes: Record<string, unknown>, ticketIds = [a, b]) =>
    system.createCode(token, { eventId: cast.event.id, ticketIds, attributes });

  await t.step("no code: the plain total, as two-decimal strings", async () => {
    const reply = await preview({ tickets: [{ id: a, quantity: 3 }, { id: free, quantity: 2 }] });
    expectStatus(reply, 200);
    assert.equal(reply.headers.get("Content-Type"), "application/json");
    assert.equal(reply.body.total, "59.97");
    assert.equal(reply.body.discount, "0.00");
    assert.deepEqual(reply.body.tickets[1], {
      id: free,
      price: "0.00",
      quantity: 2,
      discount: null,
      sub_total: "0.00",
    });
  });
  await t.step(
    "percent: of the unit price, rounded half-up to the cent, attached tickets only",
    async () => {
      // 15 % of 19.99 = 2.9985 -> 3.00; of 0.10 = 0.015 -> 0.02.
      const id = await code({ type: "percent", value: 15, code: "PCT" });
      const reply = await preview({
        tickets: [{ id: a, quantity: 2 }, { id: b, quantity: 1 }, { id: c, quantity: 1 }],
        "discount-code": id,
      });
      expectStatus(reply, 200);
      const [ta, tb, tc] = reply.body.tickets;
      assert.equal(ta.discount.amount, "3.00");
      assert.equal(ta.discount.total, "6.00");
      assert.equal(ta.sub_total, "33.98");
      assert.equal(tb.discount.amount, "0.02");
      assert.equal(tb.sub_total, "0.08");
      assert.equal(tc.discount, null);
      assert.equal(tc.sub_total, "50.00");
      assert.equal(reply.body.discount, "6.02");
      assert.equal(reply.body.total, "84.06");
      assert.deepEqual(reply.body.warnings, []);
    },
  );
  await t.step("amount: flat off each unit, never below zero", async () => {
    const id = await code({ type: "amount", value: "0.10", code: "FLAT" });
    const reply = await preview({
      tickets: [{ id: a, quantity: 1 }, { id: b, quantity: 4 }],
      "discount-code": String(id),
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.tickets[0].sub_total, "19.89");
    assert.equal(reply.body.tickets[1].sub_total, "0.00");
    assert.equal(reply.body.total, "19.89");
    // 100 % percent: also never below zero.
    const all = await code({ type: "percent", value: "100", code: "ALL" });
    const gratis = await preview({ tickets: [{ id: a, quantity: 2 }], "discount-code": all });
    assert.equal(gratis.body.total, "0.00");
  });
  await t.step(
    "max-quantity and remaining uses cap the discounted units, with warnings",
    async () => {
      const id = await code({
        type: "amount",
        value: 1,
        code: "CAPPED",
        "max-quantity": 3,
        "tickets-number": 5,
      }, [a]);
      const capped = await preview({ tickets: [{ id: a, quantity: 4 }], "discount-code": id });
      assert.equal(capped.body.tickets[0].discount.quantity, 3);
      assert.equal(capped.body.discount, "3.00");
      assert.match(capped.body.warnings[0], /at most 3 tickets/);
      await system.bus.request(discountsRedemption.reserve, {
        codeId: id,
        orderId: "o",
        quantity: 3,
      });
      const left = await preview({ tickets: [{ id: a, quantity: 3 }], "discount-code": id });
      assert.equal(left.body.tickets[0].discount.quantity, 2);
      assert.match(left.body.warnings.join(" "), /2 uses left/);
    },
  );
  await t.step("min-quantity not reached: no discount, and why", async () => {
    const id = await code({ type: "amount", value: 1, code: "BULK", "min-quantity": 5 }, [a]);
    const reply = await preview({ tickets: [{ id: a, quantity: 4 }], "discount-code": id });
    assert.equal(reply.body.discount, "0.00");
    assert.match(reply.body.warnings[0], /at least 5/);
  });
  await t.step(
    "fewer uses left than min-quantity: no discount (a reservation would fail)",
    async () => {
      const id = await code({
        type: "amount",
        value: 5,
        code: "MINQ",
        "min-quantity": 2,
        "max-quantity": 5,
        "tickets-number": 5,
      }, [a]);
      await system.bus.request(discountsRedemption.reserve, {
        codeId: id,
        orderId: "m1",
        quantity: 4,
      });
      const reply = await preview({ tickets: [{ id: a, quantity: 3 }], "discount-code": id });
      expectStatus(reply, 200);
      assert.equal(reply.body.discount, "0.00");
      assert.match(reply.body.warnings.join(" "), /1 uses left, fewer than the 2/);
      // What the preview would have discounted before: the reservation refuses it.
      await assert.rejects(
        system.bus.request(discountsRedemption.reserve, { codeId: id, orderId: "m2", quantity: 1 }),
        /min-quantity/,
      );
    },
  );
  await t.step(
    "a code's text with spaces around it is found, as it was stored trimmed",
    async () => {
      await code({ type: "amount", value: 1, code: "PASTED" }, [a]);
      const reply = await preview({ tickets: [{ id: a, quantity: 1 }], code: "  pasted " });
      expectStatus(reply, 200);
      assert.equal(reply.body.discount, "1.00");
      assert.equal(reply.body.tickets[0].discount.code, "PASTED", "the stored code applied");
    },
  );
  await t.step("a donation line is priced at what the buyer gives, as the original", async () => {
    const gift = await system.createTicket(token, cast.event.id, { type: "donation", price: 10 });
    const pct = await code({ type: "percent", value: 10, code: "GIFT10" }, [gift]);
    const given = await preview({
      tickets: [{ id: gift, quantity: 2, price: "25.50" }, { id: a, quantity: 1, price: 1 }],
      "discount-code": pct,
    });
    expectStatus(given, 200);
    // 10 % of 25.50 = 2.55 off each donation; the paid ticket keeps its own price.
    assert.equal(given.body.tickets[0].price, "25.50");
    assert.equal(given.body.tickets[0].sub_total, "45.90");
    assert.equal(given.body.tickets[1].price, "19.99");
    assert.equal(given.body.total, "65.89");
    const unsaid = await preview({ tickets: [{ id: gift, quantity: 1 }] });
    assert.equal(unsaid.body.total, "10.00", "without a price, the ticket's own");
    for (const price of [0, "0.00", -5, "1.005", "lots"]) {
      expectError(await preview({ tickets: [{ id: gift, quantity: 1, price }] }), 422, {
        pointer: "/tickets/0/price",
      }, String(price));
    }
  });
  await t.step("an inactive or expired code is 422, an unknown one 404", async () => {
    const off = await code({ code: "OFF", "is-active": false }, [a]);
    expectError(await preview({ tickets: [{ id: a }], "discount-code": off }), 422, {
      pointer: "/discount-code",
    });
    expectError(await preview({ tickets: [{ id: a }], "discount-code": "999999" }), 404, {
      pointer: "/discount-code",
    });
  });
  await t.step("bad input is 4xx", async () => {
    expectError(await preview({ tickets: [{ id: "999999", quantity: 1 }] }), 404, {
      pointer: "/tickets/0/id",
    });
    expectError(await preview({ tickets: [{ id: a, quantity: -1 }] }), 422, {
      pointer: "/tickets/0/quantity",
    });
    expectError(await preview({ tickets: [{ id: a, quantity: "two" }] }), 422);
    expectError(await preview({ tickets: "all" }), 422, { pointer: "/tickets" });
    expectError(await preview({ tickets: [{ id: a }, { id: a }] }), 422, {
      pointer: "/tickets/1/id",
    });
    expectError(await preview([]), 400);
    const wrongType = await system.call("POST", "/v1/orders/calculate-amount", {
      body: { tickets: [] },
      headers: { "Content-Type": "text/plain" },
    });
    expectError(wrongType, 415);
  });
});

Deno.test("[discounts] POST /v1/orders/calculate-amount gives every covered line its discount, as open-event-frontend reads it", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast(published);
  const token = cast.owner.token;
  const ids = [
    await system.createTicket(token, cast.event.id, { price: 20 }),
    await system.createTicket(token, cast.event.id, { price: 30 }),
    await system.createTicket(token, cast.event.id, { price: 40 }),
  ];
  const plain = await system.createTicket(token, cast.event.id, { price: 50 });
  const code = (attributes: Record<string, unknown>, ticketIds = ids) =>
    system.createCode(token, { eventId: cast.event.id, ticketIds, attributes });
  // What the client sends once a buyer applies a code: each covered ticket once, then it reads
  // `discount.amount` of each line (a null there fails its handler: "not a valid code").
  const applied = (id: string, ticketIds = ids) =>
    system.call("POST", "/v1/orders/calculate-amount", {
      body: {
        "discount-code": id,
        tickets: ticketIds.map((ticket) => ({ id: ticket, quantity: 1 })),
      },
      headers: JSON_TYPE,
    });
  const perUnit = (reply: { body: { tickets: { discount: { amount: string } | null }[] } }) =>
    reply.body.tickets.map((line) => line.discount?.amount ?? null);

  await t.step(
    "more covered tickets than max-quantity: the rest show theirs, 0 units",
    async () => {
      const id = await code({ type: "percent", value: 10, "max-quantity": 2 });
      const reply = await applied(id);
      expectStatus(reply, 200);
      assert.deepEqual(perUnit(reply), ["2.00", "3.00", "4.00"]);
      const last = reply.body.tickets[2];
      assert.equal(last.discount.quantity, 0);
      assert.equal(last.discount.total, "0.00");
      assert.equal(last.sub_total, "40.00");
      assert.equal(reply.body.discount, "5.00");
      assert.equal(reply.body.total, "85.00");
    },
  );
  await t.step("min-quantity not reached: each line shows its discount, none taken", async () => {
    const id = await code({ type: "amount", value: 5, "min-quantity": 4 });
    const reply = await applied(id);
    expectStatus(reply, 200);
    assert.deepEqual(perUnit(reply), ["5.00", "5.00", "5.00"]);
    assert.deepEqual(
      reply.body.tickets.map((line: { discount: { quantity: number } }) => line.discount.quantity),
      [0, 0, 0],
    );
    assert.equal(reply.body.discount, "0.00");
    assert.equal(reply.body.total, "90.00");
    assert.match(reply.body.warnings[0], /at least 4/);
  });
  await t.step("no uses left: the same, and the warning says so", async () => {
    const id = await code({ type: "amount", value: 5, "tickets-number": 1, "max-quantity": 1 });
    await system.bus.request(discountsRedemption.reserve, {
      codeId: id,
      orderId: "o",
      quantity: 1,
    });
    const reply = await applied(id);
    expectStatus(reply, 200);
    assert.deepEqual(perUnit(reply), ["5.00", "5.00", "5.00"]);
    assert.equal(reply.body.total, "90.00");
    assert.match(reply.body.warnings.join(" "), /0 uses left/);
  });
  await t.step("a ticket the code does not cover still has none", async () => {
    const id = await code({ type: "amount", value: 5 });
    const reply = await applied(id, [...ids, plain]);
    assert.deepEqual(perUnit(reply), ["5.00", "5.00", "5.00", null]);
  });
  await t.step("a covered ticket made free since shows a discount of 0.00", async () => {
    const id = await code({ type: "percent", value: 10 });
    const made = await system.call("PATCH", `/v1/tickets/${ids[2]}`, {
      token,
      body: { data: { type: "ticket", id: ids[2], attributes: { type: "free", price: 0 } } },
    });
    expectStatus(made, 200);
    const reply = await applied(id);
    expectStatus(reply, 200);
    assert.deepEqual(perUnit(reply), ["2.00", "3.00", "0.00"]);
    assert.equal(reply.body.tickets[2].discount.quantity, 0);
    assert.equal(reply.body.tickets[2].sub_total, "0.00");
    assert.equal(reply.body.total, "45.00");
  });
});

Deno.test("[discounts] POST /v1/orders/calculate-amount prices an order at full price when the event's code covers none of its tickets", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast(published);
  const token = cast.owner.token;
  const vip = await system.createTicket(token, cast.event.id, { price: 50 });
  const regular = await system.createTicket(token, cast.event.id, { price: 20 });
  const id = await system.createCode(token, {
    eventId: cast.event.id,
    ticketIds: [vip],
    attributes: { code: "VIPONLY", type: "percent", value: 10 },
  });
  // What open-event-frontend's order summary sends once the buyer applied a code on the event
  // page: the code's id with every ticket of the order, whichever the code covers. Too few covered
  // tickets (below min-quantity) are a 200 with a warning; none covered was a 404, which left the
  // summary without its totals.
  const summary = (body: unknown) =>
    system.call("POST", "/v1/orders/calculate-amount", { body, headers: JSON_TYPE });

  await t.step("by id: 200, every line at full price, a warning that names no code", async () => {
    const reply = await summary({
      "discount-code": id,
      tickets: [{ id: regular, quantity: 2 }],
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.tickets[0].discount, null);
    assert.equal(reply.body.tickets[0].sub_total, "40.00");
    assert.equal(reply.body.discount, "0.00");
    assert.equal(reply.body.total, "40.00");
    assert.equal(reply.body.warnings.length, 1);
    assert.match(reply.body.warnings[0], /none of these tickets/);
    assert.ok(!reply.text.includes("VIPONLY"), reply.text);
  });
  await t.step("by text: the same", async () => {
    const reply = await summary({ code: "viponly", tickets: [{ id: regular, quantity: 1 }] });
    expectStatus(reply, 200);
    assert.equal(reply.body.total, "20.00");
    assert.match(reply.body.warnings[0], /none of these tickets/);
  });
  await t.step("an inactive one is still 422", async () => {
    const paused = await system.createCode(token, {
      eventId: cast.event.id,
      ticketIds: [vip],
      attributes: { "is-active": false },
    });
    const reply = await summary({ "discount-code": paused, tickets: [{ id: regular }] });
    expectError(reply, 422, { pointer: "/discount-code" });
  });
});

Deno.test("[discounts] POST /v1/orders/calculate-amount never reveals codes to prying callers", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast(published);
  const other = await system.eventWithCast(published);
  const token = cast.owner.token;
  const ticket = await system.createTicket(token, cast.event.id, { price: 20 });
  const foreignTicket = await system.createTicket(other.owner.token, other.event.id, { price: 9 });
  const draft = await system.createEvent(token);
  const draftTicket = await system.createTicket(token, draft.id, { price: 40 });
  const secret = await system.createCode(token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
    attributes: { code: "SECRET10", "min-quantity": 2, "max-quantity": 3 },
  });
  const paused = await system.createCode(token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
    attributes: { code: "HUSHHUSH", "is-active": false },
  });
  const foreign = await system.createCode(other.owner.token, {
    eventId: other.event.id,
    ticketIds: [foreignTicket],
    attributes: { code: "THEIRS" },
  });
  const draftCode = await system.createCode(token, {
    eventId: draft.id,
    ticketIds: [draftTicket],
    attributes: { code: "DRAFTED" },
  });
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [cast.event.id],
    attributes: { code: "PLATFORMX", type: "percent", value: 10 },
  });
  const preview = (body: unknown, callerToken?: string) =>
    system.call("POST", "/v1/orders/calculate-amount", {
      body,
      token: callerToken,
      headers: JSON_TYPE,
    });
  const texts = ["SECRET10", "HUSHHUSH", "THEIRS", "DRAFTED", "PLATFORMX"];
  const leaks = (text: string) => texts.filter((code) => text.includes(code));

  await t.step("warnings and errors never echo the code text", async () => {
    for (const quantity of [1, 5]) {
      const reply = await preview({
        tickets: [{ id: ticket, quantity }],
        "discount-code": secret,
      });
      expectStatus(reply, 200);
      assert.ok(reply.body.warnings.length > 0);
      assert.deepEqual(leaks(reply.text), [], reply.text);
    }
    const off = await preview({ tickets: [{ id: ticket }], "discount-code": paused });
    expectError(off, 422, { pointer: "/discount-code" });
    assert.deepEqual(leaks(off.text), [], off.text);
  });
  await t.step(
    "unknown, foreign and event-kind codes are the same 404",
    async () => {
      const details = new Set<string>();
      for (const id of ["999999", foreign, eventCode]) {
        const reply = await preview({ tickets: [{ id: ticket }], "discount-code": id });
        expectError(reply, 404, { pointer: "/discount-code" }, id);
        assert.deepEqual(leaks(reply.text), [], reply.text);
        details.add(reply.body.errors[0].detail);
      }
      assert.equal(details.size, 1, [...details].join(" | "));
    },
  );
  await t.step("a code needs at least one ticket", async () => {
    expectError(await preview({ tickets: [], "discount-code": secret }), 422, {
      pointer: "/tickets",
    });
  });
  await t.step("tickets of a draft event are unknown to all but its own people", async () => {
    for (const callerToken of [undefined, cast.stranger.token]) {
      const reply = await preview(
        { tickets: [{ id: draftTicket }], "discount-code": draftCode },
        callerToken,
      );
      expectError(reply, 404, { pointer: "/tickets/0/id" });
      assert.deepEqual(leaks(reply.text), [], reply.text);
    }
    const own = await preview(
      { tickets: [{ id: draftTicket, quantity: 1 }], "discount-code": draftCode },
      token,
    );
    expectStatus(own, 200);
    assert.equal(own.body.total, "35.00");
  });
  await t.step("beside a public ticket, a draft's ticket is as unknown as no ticket", async () => {
    // The one-event rule came first and answered a 422 "different events" for a draft's ticket
    // where an unknown id got the 404: a prober learned which ids sit in unpublished events.
    for (const callerToken of [undefined, cast.stranger.token]) {
      const unknown = await preview({ tickets: [{ id: ticket }, { id: "999999" }] }, callerToken);
      const drafted = await preview(
        { tickets: [{ id: ticket }, { id: draftTicket }] },
        callerToken,
      );
      expectError(unknown, 404, { pointer: "/tickets/1/id" });
      expectError(drafted, 404, { pointer: "/tickets/1/id" });
    }
    // Nor does a known-bad id after it: the unknown one was named first where the draft's was not.
    for (const callerToken of [undefined, cast.stranger.token]) {
      const unknown = await preview({ tickets: [{ id: "999998" }, { id: "999999" }] }, callerToken);
      const drafted = await preview(
        { tickets: [{ id: draftTicket }, { id: "999999" }] },
        callerToken,
      );
      expectError(unknown, 404, { pointer: "/tickets/0/id" });
      expectError(drafted, 404, { pointer: "/tickets/0/id" });
    }
    const own = await preview({ tickets: [{ id: ticket }, { id: draftTicket }] }, token);
    expectError(own, 422, { pointer: "/tickets" }, "its own people see two events");
    const twoPublic = await preview(
      { tickets: [{ id: ticket }, { id: foreignTicket }] },
      cast.stranger.token,
    );
    expectError(twoPublic, 422, { pointer: "/tickets" }, "two public events: the one-event rule");
  });
  await t.step("by id, the discount does not name the code", async () => {
    const reply = await preview({
      tickets: [{ id: ticket, quantity: 2 }],
      "discount-code": secret,
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.discount, "10.00");
    assert.equal(reply.body.tickets[0].discount.code, null);
    assert.deepEqual(leaks(reply.text), []);
  });
  await t.step("the code text works too, case-insensitively, for the tickets' event", async () => {
    const reply = await preview({ tickets: [{ id: ticket, quantity: 2 }], code: "secret10" });
    expectStatus(reply, 200);
    assert.equal(reply.body.discount, "10.00");
    assert.equal(reply.body.tickets[0].discount.code, "SECRET10");
    expectError(await preview({ tickets: [{ id: ticket }], code: "THEIRS" }), 404, {
      pointer: "/code",
    });
    expectError(
      await preview({ tickets: [{ id: ticket }], code: "SECRET10", "discount-code": secret }),
      422,
      { pointer: "/code" },
    );
  });
});

Deno.test("[discounts] the anonymous checkout lookup reads events from its projection", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast(published);
  await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    attributes: { code: "PROJECTED" },
  });
  await system.catalog.relay.flush();
  const projected = async () =>
    (await system.dsql`select state, deleted from catalog_events where id = ${cast.event.id}`)[0];
  await t.step("catalog facts fill the projection", async () => {
    await eventually(async () => (await projected())?.state === "published", 10_000, "projected");
    assert.equal((await projected()).deleted, false);
  });
  const lookup = (event: string) =>
    system.call("GET", `/v1/events/${event}/discount-codes/PROJECTED`);
  await t.step("a published event in the projection needs no catalog hop", async () => {
    const before = system.catalog.running.stats().find((s) => s.subject.endsWith("access"))!;
    const count = before.num_requests;
    expectStatus(await lookup(cast.event.id), 200);
    expectStatus(await lookup(cast.event.identifier), 200);
    const after = system.catalog.running.stats().find((s) => s.subject.endsWith("access"))!;
    assert.equal(after.num_requests, count);
  });
  await t.step("an event back in draft is hidden once the fact arrives", async () => {
    expectStatus(
      await system.call("PATCH", `/v1/events/${cast.event.id}`, {
        token: cast.owner.token,
        body: { data: { type: "event", id: cast.event.id, attributes: { state: "draft" } } },
      }),
      200,
    );
    await system.catalog.relay.flush();
    await eventually(async () => (await projected()).state === "draft", 10_000, "draft projected");
    expectError(await lookup(cast.event.id), 404);
  });
  await t.step("an event the projection lacks is asked of the catalog", async () => {
    const late = await system.eventWithCast(published);
    await system.createCode(late.owner.token, {
      eventId: late.event.id,
      attributes: { code: "PROJECTED" },
    });
    // Projected first, then removed: deleted before the projection followed, the row came back
    // (a probe holding the projection back saw the lookup answered without asking the catalog).
    await system.catalog.relay.flush();
    const lateRow = () => system.dsql`select 1 from catalog_events where id = ${late.event.id}`;
    await eventually(async () => (await lateRow()).length === 1, 10_000, "late projected");
    await system.dsql`delete from catalog_events where id = ${late.event.id}`;
    const asked = () =>
      system.catalog.running.stats().find((s) => s.subject.endsWith("access"))!.num_requests;
    const before = asked();
    expectStatus(await lookup(late.event.identifier), 200);
    assert.ok(asked() > before, "the catalog was asked");
  });
  await t.step("facts out of order never resurrect a deleted event", async () => {
    const at = (ms: number) => new Date(Date.UTC(2030, 0, 1) + ms).toISOString();
    const fact = (verb: "updated" | "deleted", time: string, state: "published"): Fact =>
      exampleFact(`catalog.event.${verb}`, { id: "777777", identifier: "0badcafe", state }, {
        time: new Date(time),
      });
    const relay = system.discounts[0].relay;
    await applyCatalogFacts(system.dsql, relay, [fact("deleted", at(2000), "published")]);
    await applyCatalogFacts(system.dsql, relay, [fact("updated", at(1000), "published")]);
    const [row] = await system.dsql`select state, deleted from catalog_events where id = 777777`;
    assert.equal(row.deleted, true);
  });
  // Found by a review: a fact of the same millisecond as the stored one may be the older one
  // (its ack lost, redelivered after the next): it must not make the event live or published.
  await t.step("a fact of the same millisecond, redelivered, resurrects nothing", async () => {
    const time = new Date(Date.UTC(2030, 0, 1, 0, 0, 3));
    const fact = (verb: "updated" | "deleted", id: string, state: "published" | "draft"): Fact =>
      exampleFact(`catalog.event.${verb}`, { id, identifier: `0bad${id.slice(2)}`, state }, {
        time,
      });
    const relay = system.discounts[0].relay;
    const row = async (id: string) =>
      (await system.dsql`select state, deleted from catalog_events where id = ${id}`)[0];
    const updated = fact("updated", "778801", "published");
    await applyCatalogFacts(system.dsql, relay, [updated, fact("deleted", "778801", "published")]);
    await applyCatalogFacts(system.dsql, relay, [updated]);
    assert.equal((await row("778801")).deleted, true, "a deleted event stays deleted");
    const published = fact("updated", "778802", "published");
    await applyCatalogFacts(system.dsql, relay, [published, fact("updated", "778802", "draft")]);
    await applyCatalogFacts(system.dsql, relay, [published]);
    assert.equal((await row("778802")).state, "draft", "a draft event stays a draft");
  });
  await t.step("a restored event is served from the projection again", async () => {
    const patch = (query: string, attributes: Record<string, unknown>, token: string) =>
      system.call("PATCH", `/v1/events/${cast.event.id}${query}`, {
        token,
        body: { data: { type: "event", id: cast.event.id, attributes } },
      });
    expectStatus(await patch("", { state: "published" }, cast.owner.token), 200);
    const path = `/v1/events/${cast.event.id}`;
    expectStatus(await system.call("DELETE", path, { token: system.admin.token }), 200);
    await system.catalog.relay.flush();
    await eventually(async () => (await projected()).deleted, 10_000, "deletion projected");
    expectStatus(await patch("?get_trashed=true", { "deleted-at": null }, system.admin.token), 200);
    await system.catalog.relay.flush();
    await eventually(async () => !(await projected()).deleted, 10_000, "restore projected");
    const asked = () =>
      system.catalog.running.stats().find((s) => s.subject.endsWith("access"))!.num_requests;
    const before = asked();
    // Its code went to the trash with the event and stays there: a 404, from the projection.
    expectError(await lookup(cast.event.id), 404);
    assert.equal(asked(), before, "no catalog hop for the restored event");
  });
});

Deno.test("[discounts] a cached lookup re-read before the projection followed the catalog is dropped once it has", async () => {
  // Long enough that only the discounts' announcement, not the settle rule, can end the
  // stale page within the bound below.
  const settleMs = 10_000;
  await using system = await startDiscountsSystem({ env: { CACHE_SETTLE_MS: String(settleMs) } });
  const cast = await system.eventWithCast(published);
  await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    attributes: { code: "FOLLOWED" },
  });
  const path = `/v1/events/${cast.event.id}/discount-codes/FOLLOWED`;
  await system.catalog.relay.flush();
  const projected = async () =>
    (await system.dsql`select state from catalog_events where id = ${cast.event.id}`)[0]?.state;
  await eventually(async () => await projected() === "published", 10_000, "projected");

  // The projection's row held, so the discounts' consumer waits with the catalog's fact in hand.
  const held = await system.dsql.reserve();
  system.defer(() => held.release());
  await held`begin`;
  await held`select 1 from catalog_events where id = ${cast.event.id} for update`;
  const unpublished = await system.call("PATCH", `/v1/events/${cast.event.id}`, {
    token: cast.owner.token,
    body: { data: { type: "event", id: cast.event.id, attributes: { state: "draft" } } },
  });
  expectStatus(unpublished, 200);
  await system.catalog.relay.flush();
  await eventually(
    async () => {
      const [{ waiting }] = await system.dsql`select count(*)::int as waiting
      from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'
        and query like '%catalog_events%'`;
      return waiting > 0;
    },
    4_000,
    "the consumer to wait for the row",
  );
  // By now the gateway has heard the fact (published before JetStream delivered it).
  await system.bus.nc.flush();
  const stale = await system.call("GET", path);
  expectStatus(stale, 200, "read again from the projection, which still says published");
  assert.equal(stale.headers.get("X-Cache"), "MISS");
  assert.equal((await system.call("GET", path)).headers.get("X-Cache"), "HIT");

  const released = Date.now();
  await held`commit`;
  await eventually(
    async () => (await system.call("GET", path)).status === 404,
    2_000,
    "the lookup to be dropped once the projection followed",
  );
  assert.ok(Date.now() - released < settleMs / 4);
});

Deno.test("[discounts] a cached lookup ends at the code's valid-till, whatever fieldset it shows", async () => {
  const settleMs = 100;
  await using system = await startDiscountsSystem({ env: { CACHE_SETTLE_MS: String(settleMs) } });
  const cast = await system.eventWithCast(published);
  const till = new Date(Date.now() + 2_500);
  await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    attributes: { code: "BRIEF", "valid-till": till.toISOString() },
  });
  await system.readFacts();
  await new Promise((resolve) => setTimeout(resolve, settleMs + 50));
  // Without valid-till in the answer: the expiry still comes from the code.
  const path = `/v1/events/${cast.event.id}/discount-codes/BRIEF?fields[discount-code]=code`;
  await eventually(
    async () => (await system.call("GET", path)).headers.get("X-Cache") === "HIT",
    2_000,
    "the lookup to be cached",
  );
  await new Promise((resolve) => setTimeout(resolve, till.getTime() - Date.now() + 50));
  expectError(await system.call("GET", path), 422);
});
