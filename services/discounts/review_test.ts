/**
 * Regression tests for the reviewer's findings on the discounts service (issue 3): the price
 * preview's leaks, concurrent PATCHes, per-order limits of redemption, the event projection of
 * the checkout lookup, and the small ones (get_trashed on parent lists, the 409 pointer,
 * soft-deleted codes on ticket deletion, one clear 422 for huge numbers).
 */
import { eventually } from "@testing/eventually.ts";
import assert from "node:assert/strict";
import { ConflictError, UnprocessableError } from "@shared/errors.ts";
import type { Fact } from "@shared/facts.ts";
import { exampleFact } from "@testing/facts.ts";
import { discountsRedemption } from "@shared/subjects.ts";
import { expectError, expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";
import { applyCatalogFacts } from "./catalog_facts.ts";

const published = { attributes: { state: "published" } };
const JSON_TYPE = { "Content-Type": "application/json" };

Deno.test("[discounts] POST /v1/orders/calculate-amount never reveals codes to prying callers", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast(published);
  const other = await system.eventWithCast(published);
  const token = cast.owner.token;
  const ticket = await system.createTicket(token, cast.event.id, { price: 20 });
  const plain = await system.createTicket(token, cast.event.id, { price: 30 });
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
    "unknown, foreign, event-kind and not-applicable codes are the same 404",
    async () => {
      const details = new Set<string>();
      for (const id of ["999999", foreign, eventCode, secret]) {
        const tickets = id === secret ? [{ id: plain }] : [{ id: ticket }];
        const reply = await preview({ tickets, "discount-code": id });
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

Deno.test("[discounts] PATCH /v1/discount-codes/{id} in parallel never stores a row that breaks the rules", async () => {
  await using system = await startDiscountsSystem({ instances: 2 });
  const cast = await system.eventWithCast();
  const token = cast.owner.token;
  const ticket = await system.createTicket(token, cast.event.id, { price: 10 });
  const id = await system.createCode(token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
    attributes: { "tickets-number": 100, "max-quantity": 10 },
  });
  const patch = (attributes: Record<string, unknown>) =>
    system.call("PATCH", `/v1/discount-codes/${id}`, {
      token,
      body: { data: { type: "discount-code", id, attributes } },
    });
  for (let round = 0; round < 10; round++) {
    await system.dsql`update discount_codes set tickets_number = 100, max_quantity = 10
      where id = ${id}`;
    const replies = await Promise.all([
      patch({ "max-quantity": 50 }),
      patch({ "tickets-number": 20 }),
    ]);
    const statuses = replies.map((r) => r.status).sort();
    assert.equal(statuses[0], 200, `round ${round}: ${replies.map((r) => r.text).join(" | ")}`);
    assert.ok([409, 422].includes(statuses[1]), `round ${round}: ${statuses}`);
    const [row] = await system.dsql`select tickets_number, max_quantity from discount_codes
      where id = ${id}`;
    assert.ok(row.tickets_number >= row.max_quantity, `round ${round}: ${JSON.stringify(row)}`);
  }
  await assert.rejects(
    system.dsql`update discount_codes set tickets_number = 5, max_quantity = 10 where id = ${id}`,
    (error: { code?: string }) => error.code === "23514",
  );
});

Deno.test("[discounts] reserve refuses more than max-quantity, less than min-quantity and event codes", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    attributes: { "tickets-number": 100, "min-quantity": 2, "max-quantity": 5 },
  });
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [cast.event.id],
  });
  const reserve = (codeId: string, orderId: string, quantity: number) =>
    system.bus.request(discountsRedemption.reserve, { codeId, orderId, quantity });
  const refusedWith = (pattern: RegExp) => (e: Error) => {
    assert.ok(e instanceof UnprocessableError, String(e));
    assert.match(e.message, pattern);
    return true;
  };
  await t.step("more than max-quantity: 422", async () => {
    await assert.rejects(reserve(id, "big", 6), refusedWith(/at most 5/));
  });
  await t.step("fewer than min-quantity: 422", async () => {
    await assert.rejects(reserve(id, "small", 1), refusedWith(/at least 2/));
  });
  await t.step("within the limits: reserved", async () => {
    assert.equal((await reserve(id, "ok", 5)).usedCount, 5);
  });
  await t.step("an event code does not discount ticket orders: 422", async () => {
    await assert.rejects(reserve(eventCode, "ev", 1), refusedWith(/event discount code/));
  });
  await t.step("nothing was taken by the refusals", async () => {
    const [row] = await system.dsql`select used_count from discount_codes where id = ${id}`;
    assert.equal(row.used_count, 5);
    const [ev] = await system.dsql`select used_count from discount_codes where id = ${eventCode}`;
    assert.equal(ev.used_count, 0);
  });
  await t.step("a used-up code is still a 409", async () => {
    await system.dsql`update discount_codes set tickets_number = 6 where id = ${id}`;
    await assert.rejects(reserve(id, "late", 2), ConflictError);
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
    await system.dsql`delete from catalog_events where id = ${late.event.id}`;
    expectStatus(await lookup(late.event.identifier), 200);
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
});

Deno.test("[discounts] parent lists take get_trashed: admins see soft-deleted codes", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const ticket = await system.createTicket(cast.owner.token, cast.event.id);
  const id = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
  });
  await system.createCode(cast.owner.token, { eventId: cast.event.id, ticketIds: [ticket] });
  expectStatus(
    await system.call("DELETE", `/v1/discount-codes/${id}`, { token: cast.owner.token }),
    200,
  );
  const paths = [
    `/v1/events/${cast.event.id}/discount-codes`,
    `/v1/users/${cast.owner.id}/discount-codes`,
    `/v1/tickets/${ticket}/discount-codes`,
  ];
  for (const path of paths) {
    const admin = await system.call("GET", `${path}?get_trashed=true`, {
      token: system.admin.token,
    });
    expectStatus(admin, 200, path);
    assert.equal(admin.body.meta.count, 2, path);
    const owner = await system.call("GET", `${path}?get_trashed=true`, {
      token: cast.owner.token,
    });
    expectStatus(owner, 200, path);
    assert.equal(owner.body.meta.count, 1, path);
  }
});

Deno.test("[discounts] POST /v1/discount-codes points its duplicate-code 409 at the code", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const post = () =>
    system.postCode(cast.owner.token, { eventId: cast.event.id, attributes: { code: "TWICE" } });
  expectStatus(await post(), 201);
  expectError(await post(), 409, { pointer: "/data/attributes/code" });
});

Deno.test("[discounts] deleting a ticket publishes no fact for soft-deleted codes", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const ticket = await system.createTicket(cast.owner.token, cast.event.id);
  const live = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
  });
  const gone = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
  });
  expectStatus(
    await system.call("DELETE", `/v1/discount-codes/${gone}`, { token: cast.owner.token }),
    200,
  );
  expectStatus(
    await system.call("DELETE", `/v1/tickets/${ticket}`, { token: cast.owner.token }),
    200,
  );
  await system.catalog.relay.flush();
  let updated: Fact[] = [];
  await eventually(
    async () => {
      await system.discounts[0].relay.flush();
      updated = (await system.readFacts()).filter((f) =>
        f.source === "discounts" && f.type.endsWith(".updated")
      );
      return updated.some((f) => f.data.id === live);
    },
    10_000,
    "the live code's updated fact",
  );
  assert.deepEqual(updated.map((f) => f.data.id), [live]);
});

Deno.test("[discounts] POST /v1/discount-codes refuses a huge tickets-number with one clear 422", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const reply = await system.call("POST", "/v1/discount-codes", {
    token: cast.owner.token,
    body: `{"data":{"type":"discount-code","attributes":{"code":"HUGE","value":5,"type":"amount",` +
      `"used-for":"ticket","tickets-number":99999999999999999999},"relationships":{"event":` +
      `{"data":{"type":"event","id":"${cast.event.id}"}}}}}`,
  });
  expectError(reply, 422, { pointer: "/data/attributes/tickets-number" });
  assert.equal(reply.body.errors.length, 1, reply.text);
  assert.match(reply.body.errors[0].detail, /2147483647/);
  assert.doesNotMatch(reply.text, /9007199254740991/);
});
