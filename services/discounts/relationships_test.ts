import assert from "node:assert/strict";
import { type CallOptions, expectError, expectStatus } from "@testing/system.ts";
import { type DiscountsTestSystem, startDiscountsSystem } from "./_test_utils.ts";

const tickets = (...ids: string[]) => ({ data: ids.map((id) => ({ type: "ticket", id })) });
const events = (...ids: string[]) => ({ data: ids.map((id) => ({ type: "event", id })) });
const path = (id: string, rel: string) => `/v1/discount-codes/${id}/relationships/${rel}`;

/**
 * `system.call` that also states the body's length: an in-process `Request` has none, and the
 * gateway reads a DELETE body only when the request says it has one (as HTTP clients do).
 */
function sender(system: DiscountsTestSystem) {
  return (method: string, url: string, options: CallOptions = {}) => {
    const headers: Record<string, string> = {};
    if (options.body !== undefined) {
      const text = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["Content-Length"] = String(new TextEncoder().encode(text).byteLength);
    }
    return system.call(method, url, { ...options, headers: { ...headers, ...options.headers } });
  };
}

Deno.test("[discounts] PATCH, POST and DELETE /v1/discount-codes/{id}/relationships/tickets replace, add and remove", async (t) => {
  await using system = await startDiscountsSystem();
  const send = sender(system);
  // Published: a co-organizer of another event is refused (403); a draft's code is not found.
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const token = cast.coorganizer.token;
  const [a, b, c] = [
    await system.createTicket(cast.owner.token, cast.event.id, { price: 20 }),
    await system.createTicket(cast.owner.token, cast.event.id, { price: 30 }),
    await system.createTicket(cast.owner.token, cast.event.id, { price: 40 }),
  ];
  const free = await system.createTicket(cast.owner.token, cast.event.id, {
    type: "free",
    price: 0,
  });
  const cheap = await system.createTicket(cast.owner.token, cast.event.id, { price: 3 });
  const other = await system.eventWithCast();
  const foreign = await system.createTicket(other.owner.token, other.event.id, { price: 20 });
  const id = await system.createCode(token, { eventId: cast.event.id, ticketIds: [a] });
  const stored = async () => {
    const [row] = await system.dsql`select ticket_ids from code_rows where id = ${id}`;
    return row.ticket_ids as string[];
  };
  const updates = async () => {
    await system.discounts[0].relay.flush();
    return (await system.readFacts()).filter((f) =>
      f.type === "discounts.discount-code.updated" && f.data.id === id
    );
  };
  const linkage = (...ids: string[]) => ids.map((ticket) => ({ type: "ticket", id: ticket }));
  const sorted = (...ids: string[]) => [...ids].sort((x, y) => Number(x) - Number(y));

  await t.step("PATCH replaces the set: 200 with the linkage, stored, one fact", async () => {
    const reply = await send("PATCH", path(id, "tickets"), { token, body: tickets(b, c) });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, linkage(...sorted(b, c)));
    assert.equal(reply.body.links.self, path(id, "tickets"));
    assert.equal(reply.body.links.related, `/v1/discount-codes/${id}/tickets`);
    assert.deepEqual(await stored(), sorted(b, c));
    const facts = await updates();
    assert.equal(facts.length, 1);
    assert.equal(facts[0].actorid, cast.coorganizer.id);
    assert.deepEqual(facts[0].data.tickets, sorted(b, c));
  });
  await t.step("POST adds members (repeats are no-ops)", async () => {
    const reply = await send("POST", path(id, "tickets"), { token, body: tickets(a, b) });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, linkage(...sorted(a, b, c)));
    assert.deepEqual(await stored(), sorted(a, b, c));
    assert.equal((await updates()).length, 2);
  });
  await t.step("DELETE removes members", async () => {
    const reply = await send("DELETE", path(id, "tickets"), { token, body: tickets(b) });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, linkage(...sorted(a, c)));
    assert.deepEqual(await stored(), sorted(a, c));
    assert.equal((await updates()).length, 3);
  });
  await t.step("a co-organizer of another event is refused with 403", async () => {
    for (const method of ["PATCH", "POST", "DELETE"]) {
      const reply = await send(method, path(id, "tickets"), {
        token: other.coorganizer.token,
        body: tickets(a),
      });
      expectError(reply, 403, {}, method);
    }
    expectError(await send("POST", path(id, "tickets"), { body: tickets(b) }), 401);
  });
  await t.step("the rules hold on the merged state: 422", async () => {
    const cases: [string, string, unknown][] = [
      ["a free ticket added", "POST", tickets(free)],
      ["another event's ticket added", "POST", tickets(foreign)],
      ["another event's ticket in the new set", "PATCH", tickets(a, foreign)],
      ["an unknown ticket", "POST", tickets("999999")],
    ];
    for (const [what, method, body] of cases) {
      const reply = await send(method, path(id, "tickets"), { token, body });
      expectError(reply, 422, { pointer: "/data" }, what);
    }
    const priced = await system.call("PATCH", `/v1/discount-codes/${id}`, {
      token,
      body: { data: { type: "discount-code", id, attributes: { value: 10 } } },
    });
    expectStatus(priced, 200);
    const reply = await send("POST", path(id, "tickets"), { token, body: tickets(cheap) });
    expectError(reply, 422, {}, "an amount above the added ticket's price");
    assert.deepEqual(await stored(), sorted(a, c));
    assert.equal((await updates()).length, 4, "only the attribute PATCH was recorded");
  });
  await t.step("a wrong type in data is 409, a malformed body 400", async () => {
    const wrong = await send("PATCH", path(id, "tickets"), { token, body: events(a) });
    expectError(wrong, 409, { pointer: "/data/0/type" });
    const malformed: [string, string, unknown][] = [
      ["data an object", "PATCH", { data: { type: "ticket", id: a } }],
      ["data missing", "POST", {}],
      ["an item without id", "POST", { data: [{ type: "ticket" }] }],
      ["not JSON", "PATCH", "{nope"],
    ];
    for (const [what, method, body] of malformed) {
      expectError(await send(method, path(id, "tickets"), { token, body }), 400, {}, what);
    }
    expectError(await send("DELETE", path(id, "tickets"), { token }), 400, {}, "no body");
    assert.deepEqual(await stored(), sorted(a, c));
  });
  await t.step("event and marketer are not writable: 403", async () => {
    for (const method of ["PATCH", "POST", "DELETE"]) {
      const event = await send(method, path(id, "event"), {
        token,
        body: { data: { type: "event", id: cast.event.id } },
      });
      expectError(event, 403, {}, `${method} event`);
      const marketer = await send(method, path(id, "marketer"), {
        token,
        body: { data: { type: "user", id: cast.owner.id } },
      });
      expectError(marketer, 403, {}, `${method} marketer`);
    }
  });
  await t.step("a ticket code takes no events: 422", async () => {
    const reply = await send("POST", path(id, "events"), {
      token,
      body: events(cast.event.id),
    });
    expectError(reply, 422, { pointer: "/data" });
  });
  await t.step("the media type is checked and other methods are 405 with Allow", async () => {
    const wrongType = await send("PATCH", path(id, "tickets"), {
      token,
      body: JSON.stringify(tickets(a)),
      headers: { "Content-Type": "application/json" },
    });
    expectError(wrongType, 415);
    const put = await send("PUT", path(id, "tickets"), { token, body: tickets(a) });
    expectError(put, 405);
    assert.equal(put.headers.get("Allow"), "GET, PATCH, POST, DELETE, HEAD, OPTIONS");
  });
});

Deno.test("[discounts] /v1/discount-codes/{id}/relationships/events of an event code is for admins", async (t) => {
  await using system = await startDiscountsSystem();
  const send = sender(system);
  const cast = await system.eventWithCast();
  const second = await system.createEvent(cast.owner.token);
  const taken = await system.createEvent(cast.owner.token);
  const admin = system.admin.token;
  const id = await system.createCode(admin, { usedFor: "event", eventIds: [cast.event.id] });
  await system.createCode(admin, { usedFor: "event", eventIds: [taken.id] });
  const stored = async () => {
    const [row] = await system.dsql`select event_ids from code_rows where id = ${id}`;
    return row.event_ids as string[];
  };

  await t.step("the event's owner is refused with 403", async () => {
    for (const method of ["PATCH", "POST", "DELETE"]) {
      const reply = await send(method, path(id, "events"), {
        token: cast.owner.token,
        body: events(second.id),
      });
      expectError(reply, 403, {}, method);
    }
    assert.deepEqual(await stored(), [cast.event.id]);
  });
  await t.step("the admin adds, removes and replaces", async () => {
    const added = await send("POST", path(id, "events"), {
      token: admin,
      body: events(second.id),
    });
    expectStatus(added, 200);
    assert.deepEqual(
      added.body.data.map((e: { id: string }) => e.id).sort(),
      [
        cast.event.id,
        second.id,
      ].sort(),
    );
    const removed = await send("DELETE", path(id, "events"), {
      token: admin,
      body: events(cast.event.id),
    });
    expectStatus(removed, 200);
    assert.deepEqual(removed.body.data, [{ type: "event", id: second.id }]);
    const replaced = await send("PATCH", path(id, "events"), {
      token: admin,
      body: events(cast.event.id),
    });
    expectStatus(replaced, 200);
    assert.deepEqual(await stored(), [cast.event.id]);
  });
  await t.step("an event holding another event code is 409, an unknown one 422", async () => {
    const conflict = await send("POST", path(id, "events"), {
      token: admin,
      body: events(taken.id),
    });
    expectError(conflict, 409);
    const unknown = await send("PATCH", path(id, "events"), {
      token: admin,
      body: events("999999"),
    });
    expectError(unknown, 422);
    assert.deepEqual(await stored(), [cast.event.id]);
  });
  await t.step("an event code takes no tickets: 422", async () => {
    const ticket = await system.createTicket(cast.owner.token, cast.event.id, { price: 20 });
    const reply = await send("POST", path(id, "tickets"), {
      token: admin,
      body: tickets(ticket),
    });
    expectError(reply, 422);
  });
});

Deno.test("[discounts] an event's identifier names it in every write of a code, as in POST's event", async (t) => {
  await using system = await startDiscountsSystem();
  const send = sender(system);
  const admin = system.admin.token;
  const cast = await system.eventWithCast();
  const [first, second] = [cast.event, await system.createEvent(cast.owner.token)];
  const id = await system.createCode(admin, { usedFor: "event", eventIds: [] });
  const stored = async () => {
    const [row] = await system.dsql`select event_ids from code_rows where id = ${id}`;
    return row.event_ids as string[];
  };

  await t.step("POST, DELETE and PATCH of /relationships/events take identifiers", async () => {
    const added = await send("POST", path(id, "events"), {
      token: admin,
      body: events(first.identifier, second.id),
    });
    expectStatus(added, 200);
    assert.deepEqual(await stored(), [first.id, second.id].sort());
    const removed = await send("DELETE", path(id, "events"), {
      token: admin,
      body: events(second.identifier),
    });
    expectStatus(removed, 200);
    assert.deepEqual(removed.body.data, [{ type: "event", id: first.id }]);
    const replaced = await send("PATCH", path(id, "events"), {
      token: admin,
      body: events(second.identifier, second.id),
    });
    expectStatus(replaced, 200);
    assert.deepEqual(replaced.body.data, [{ type: "event", id: second.id }]);
  });
  await t.step("the body's events take them too, on PATCH and on POST", async () => {
    const patched = await system.call("PATCH", `/v1/discount-codes/${id}`, {
      token: admin,
      body: {
        data: { type: "discount-code", id, relationships: { events: events(first.identifier) } },
      },
    });
    expectStatus(patched, 200);
    assert.deepEqual(await stored(), [first.id]);
    await send("PATCH", path(id, "events"), { token: admin, body: events() });
    const created = await system.postCode(admin, {
      usedFor: "event",
      eventIds: [second.identifier],
    });
    expectStatus(created, 201);
    assert.deepEqual(created.body.data.relationships.events.data, [{
      type: "event",
      id: second.id,
    }]);
  });
  await t.step("an identifier of no event is 422, as an unknown id", async () => {
    const reply = await send("POST", path(id, "events"), {
      token: admin,
      body: events("0badcafe"),
    });
    expectError(reply, 422, { pointer: "/data" });
    assert.deepEqual(await stored(), []);
  });
  await t.step("a ticket code's PATCH names its own event by identifier, not another", async () => {
    const code = await system.createCode(cast.owner.token, { eventId: first.identifier });
    const patch = (eventKey: string) =>
      system.call("PATCH", `/v1/discount-codes/${code}`, {
        token: cast.owner.token,
        body: {
          data: {
            type: "discount-code",
            id: code,
            attributes: { "is-active": false },
            relationships: { event: { data: { type: "event", id: eventKey } } },
          },
        },
      });
    expectStatus(await patch(first.identifier), 200);
    expectError(await patch(second.identifier), 422, { pointer: "/data/relationships/event" });
  });
});

Deno.test("[discounts] a relationship write's errors point into the document it sent", async (t) => {
  await using system = await startDiscountsSystem();
  const send = sender(system);
  const cast = await system.eventWithCast();
  const token = cast.owner.token;
  const admin = system.admin.token;
  const paid = await system.createTicket(token, cast.event.id, { price: 20 });
  const cheap = await system.createTicket(token, cast.event.id, { price: 3 });
  const free = await system.createTicket(token, cast.event.id, { type: "free", price: 0 });
  const other = await system.eventWithCast();
  const foreign = await system.createTicket(other.owner.token, other.event.id, { price: 20 });
  const code = await system.createCode(token, {
    eventId: cast.event.id,
    ticketIds: [paid],
    attributes: { value: 10 },
  });
  const eventCode = await system.createCode(admin, { usedFor: "event", eventIds: [] });
  await system.createCode(admin, { usedFor: "event", eventIds: [other.event.id] });
  // The body is `{ data: [...] }`: a pointer at `/data/relationships/...` or `/data/attributes/...`
  // names nothing in it (JSON:API: the pointer is to a value in the request document).
  const expectPointsAtData = (
    reply: Awaited<ReturnType<typeof send>>,
    status: number,
    what: string,
  ) => {
    expectError(reply, status, { pointer: "/data" }, what);
    for (const error of reply.body.errors) assert.equal(error.source?.pointer, "/data", what);
  };

  await t.step("tickets: unknown, another event's, free, priced below the amount", async () => {
    const cases: [string, string, unknown][] = [
      ["an unknown ticket", "POST", tickets("999999")],
      ["another event's ticket", "PATCH", tickets(paid, foreign)],
      ["a free ticket", "POST", tickets(free)],
      ["a ticket priced below the amount", "POST", tickets(cheap)],
      ["several at once", "PATCH", tickets("999999", free, cheap)],
    ];
    for (const [what, method, body] of cases) {
      expectPointsAtData(await send(method, path(code, "tickets"), { token, body }), 422, what);
    }
    expectPointsAtData(
      await send("POST", path(code, "events"), { token, body: events(cast.event.id) }),
      422,
      "events on a ticket code",
    );
  });
  await t.step(
    "events: unknown, already holding an event code, tickets on an event code",
    async () => {
      const unknown = await send("PATCH", path(eventCode, "events"), {
        token: admin,
        body: events("999999"),
      });
      expectPointsAtData(unknown, 422, "an unknown event");
      const taken = await send("POST", path(eventCode, "events"), {
        token: admin,
        body: events(other.event.id),
      });
      expectPointsAtData(taken, 409, "an event holding another event code");
      const ticketsOnEventCode = await send("POST", path(eventCode, "tickets"), {
        token: admin,
        body: tickets(paid),
      });
      expectPointsAtData(ticketsOnEventCode, 422, "tickets on an event code");
    },
  );
});

Deno.test("[discounts] ids sent as numbers are read alike by POST, DELETE and PATCH of a relationship", async () => {
  // As every body's linkage is read (parseResourceDocument takes `"id": 7`): DELETE of the same
  // body must remove what POST of it added, never answer 200 having matched nothing.
  await using system = await startDiscountsSystem();
  const send = sender(system);
  const cast = await system.eventWithCast();
  const token = cast.owner.token;
  const [a, b] = [
    await system.createTicket(token, cast.event.id, { price: 20 }),
    await system.createTicket(token, cast.event.id, { price: 30 }),
  ];
  const id = await system.createCode(token, { eventId: cast.event.id, ticketIds: [a] });
  const numeric = (ticket: string) => ({ data: [{ type: "ticket", id: Number(ticket) }] });
  const stored = async () => {
    const [row] = await system.dsql`select ticket_ids from code_rows where id = ${id}`;
    return row.ticket_ids as string[];
  };
  const added = await send("POST", path(id, "tickets"), { token, body: numeric(b) });
  expectStatus(added, 200);
  assert.deepEqual(await stored(), [a, b].sort((x, y) => Number(x) - Number(y)));
  const removed = await send("DELETE", path(id, "tickets"), { token, body: numeric(a) });
  expectStatus(removed, 200);
  assert.deepEqual(removed.body.data, [{ type: "ticket", id: b }]);
  assert.deepEqual(await stored(), [b]);
  const replaced = await send("PATCH", path(id, "tickets"), { token, body: numeric(a) });
  expectStatus(replaced, 200);
  assert.deepEqual(await stored(), [a]);
});
