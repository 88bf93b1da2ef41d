import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

type Who = "anonymous" | "user" | "coorganizer" | "otherCoorganizer" | "organizer" | "admin";
const everyone: Who[] = [
  "anonymous",
  "user",
  "coorganizer",
  "otherCoorganizer",
  "organizer",
  "admin",
];

async function world() {
  const system = await startDiscountsSystem();
  const published = { attributes: { state: "published" } };
  const cast = await system.eventWithCast(published);
  const other = await system.eventWithCast(published);
  const ticket = await system.createTicket(cast.owner.token, cast.event.id, { price: 10 });
  const tokens: Record<Who, string | undefined> = {
    anonymous: undefined,
    user: cast.stranger.token,
    coorganizer: cast.coorganizer.token,
    otherCoorganizer: other.coorganizer.token,
    organizer: cast.organizer.token,
    admin: system.admin.token,
  };
  const ticketCode = await system.createCode(cast.coorganizer.token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
  });
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [cast.event.id],
  });
  return { system, cast, other, ticket, tokens, ticketCode, eventCode };
}

function expectMatrix(
  label: string,
  expected: Record<Who, number>,
  actual: Record<Who, number>,
): void {
  assert.deepEqual(actual, expected, label);
}

Deno.test("[discounts] permission matrix of every discount route", async (t) => {
  const w = await world();
  await using system = w.system;
  const { cast, tokens } = w;
  const run = async (
    method: string,
    path: string | ((who: Who) => Promise<string> | string),
    body?: (who: Who) => Promise<unknown> | unknown,
  ) => {
    const out = {} as Record<Who, number>;
    for (const who of everyone) {
      const url = typeof path === "string" ? path : await path(who);
      const reply = await system.call(method, url, {
        token: tokens[who],
        body: body ? await body(who) : undefined,
      });
      assert.ok(reply.status < 500, `${method} ${url} as ${who}: ${reply.text}`);
      out[who] = reply.status;
    }
    return out;
  };
  const coorg = (ok: number) => ({
    anonymous: 401,
    user: 403,
    coorganizer: ok,
    otherCoorganizer: 403,
    organizer: ok,
    admin: ok,
  });
  const adminOnly = (ok: number) => ({
    anonymous: 401,
    user: 403,
    coorganizer: 403,
    otherCoorganizer: 403,
    organizer: 403,
    admin: ok,
  });
  let n = 0;
  const ticketCodeBody = (attrs: Record<string, unknown> = {}) => ({
    data: {
      type: "discount-code",
      attributes: { code: `T${++n}`, value: 1, type: "amount", "used-for": "ticket", ...attrs },
      relationships: { event: { data: { type: "event", id: cast.event.id } } },
    },
  });
  const freshTicketCode = () => system.createCode(cast.owner.token, { eventId: cast.event.id });

  await t.step("POST a ticket code: co-organizers of that event and admins", async () => {
    expectMatrix(
      "post ticket code",
      coorg(201),
      await run("POST", "/v1/discount-codes", () => ticketCodeBody()),
    );
  });
  await t.step("POST an event code: admins only, whatever the body carries", async () => {
    const body = () => ({
      data: {
        type: "discount-code",
        attributes: { code: `E${++n}`, value: 1, type: "amount", "used-for": "event" },
        relationships: {
          event: { data: { type: "event", id: cast.event.id } },
          events: { data: [] },
        },
      },
    });
    const result = await run("POST", "/v1/discount-codes", body);
    // The admin's body carries `event`, which an event code does not take: 422 after the check.
    expectMatrix("post event code", adminOnly(422), result);
  });
  await t.step("GET /v1/discount-codes: admins", async () => {
    expectMatrix("list", adminOnly(200), await run("GET", "/v1/discount-codes"));
  });
  await t.step("GET, PATCH, DELETE a ticket code: co-organizers of its own event", async () => {
    const path = `/v1/discount-codes/${w.ticketCode}`;
    expectMatrix("get", coorg(200), await run("GET", path));
    expectMatrix(
      "patch",
      coorg(200),
      await run("PATCH", path, () => ({
        data: { type: "discount-code", id: w.ticketCode, attributes: { value: 2 } },
      })),
    );
    const ids: Record<string, string> = {};
    expectMatrix(
      "delete",
      coorg(200),
      await run(
        "DELETE",
        async (who) => `/v1/discount-codes/${ids[who] = await freshTicketCode()}`,
      ),
    );
  });
  await t.step("GET, PATCH, DELETE an event code: admins only", async () => {
    const path = `/v1/discount-codes/${w.eventCode}`;
    expectMatrix("get", adminOnly(200), await run("GET", path));
    expectMatrix(
      "patch",
      adminOnly(200),
      await run("PATCH", path, () => ({
        data: { type: "discount-code", id: w.eventCode, attributes: { value: 3 } },
      })),
    );
  });
  // A code the checkout lookup shows (this one) has its event and tickets read by anyone, as a
  // buyer's client follows them from the lookup (lookup_links_test.ts has the rest).
  const shownByTheLookup = new Set(["event", "tickets"]);
  const all = (ok: number) =>
    Object.fromEntries(everyone.map((who) => [who, ok])) as Record<Who, number>;
  await t.step("related and relationship routes are guarded like the code", async () => {
    for (const rel of ["event", "events", "tickets", "marketer"]) {
      const expected = shownByTheLookup.has(rel) ? all(200) : coorg(200);
      expectMatrix(
        `related ${rel}`,
        expected,
        await run("GET", `/v1/discount-codes/${w.ticketCode}/${rel}`),
      );
      expectMatrix(
        `relationship ${rel}`,
        expected,
        await run("GET", `/v1/discount-codes/${w.ticketCode}/relationships/${rel}`),
      );
      expectMatrix(
        `event code related ${rel}`,
        adminOnly(200),
        await run("GET", `/v1/discount-codes/${w.eventCode}/${rel}`),
      );
    }
  });
  await t.step("GET /v1/events/{id}/discount-codes: co-organizers", async () => {
    expectMatrix(
      "event codes",
      coorg(200),
      await run("GET", `/v1/events/${cast.event.id}/discount-codes`),
    );
    expectMatrix(
      "event codes linkage",
      coorg(200),
      await run("GET", `/v1/events/${cast.event.identifier}/relationships/discount-codes`),
    );
  });
  await t.step("GET /v1/events/{id}/discount-code: admins", async () => {
    expectMatrix(
      "event code",
      adminOnly(200),
      await run("GET", `/v1/events/${cast.event.id}/discount-code`),
    );
    expectMatrix(
      "event code linkage",
      adminOnly(200),
      await run("GET", `/v1/events/${cast.event.id}/relationships/discount-code`),
    );
  });
  await t.step(
    "GET /v1/tickets/{id}/discount-codes: co-organizers of the ticket's event",
    async () => {
      expectMatrix(
        "ticket codes",
        coorg(200),
        await run("GET", `/v1/tickets/${w.ticket}/discount-codes`),
      );
      expectMatrix(
        "ticket codes linkage",
        coorg(200),
        await run("GET", `/v1/tickets/${w.ticket}/relationships/discount-codes`),
      );
    },
  );
  await t.step("GET /v1/users/{id}/discount-codes: that user and admins", async () => {
    const path = `/v1/users/${cast.coorganizer.id}/discount-codes`;
    expectMatrix("user codes", {
      anonymous: 401,
      user: 403,
      coorganizer: 200,
      otherCoorganizer: 403,
      organizer: 403,
      admin: 200,
    }, await run("GET", path));
  });
  await t.step("the checkout lookup and the price preview are public", async () => {
    const [row] = await system.dsql`select code from discount_codes where id = ${w.ticketCode}`;
    const lookup = await run("GET", `/v1/events/${cast.event.id}/discount-codes/${row.code}`);
    assert.deepEqual(lookup, {
      anonymous: 200,
      user: 200,
      coorganizer: 200,
      otherCoorganizer: 200,
      organizer: 200,
      admin: 200,
    });
    const preview = await system.call("POST", "/v1/orders/calculate-amount", {
      body: { tickets: [{ id: w.ticket, quantity: 1 }] },
      headers: { "Content-Type": "application/json" },
    });
    expectStatus(preview, 200);
  });
});

Deno.test("[discounts] an organizer of event B is refused on event A's codes, whatever they send", async () => {
  const w = await world();
  await using system = w.system;
  const { cast, other } = w;
  const path = `/v1/discount-codes/${w.ticketCode}`;
  for (const token of [other.owner.token, other.organizer.token]) {
    expectStatus(await system.call("GET", path, { token }), 403);
    const moved = await system.call("PATCH", path, {
      token,
      body: {
        data: {
          type: "discount-code",
          id: w.ticketCode,
          attributes: { value: 0 },
          relationships: { event: { data: { type: "event", id: other.event.id } } },
        },
      },
    });
    expectStatus(moved, 403);
    expectStatus(await system.call("DELETE", path, { token }), 403);
    const created = await system.postCode(token, { eventId: cast.event.id });
    expectStatus(created, 403);
  }
  const [row] = await system.dsql`select value::text as value, deleted_at
    from discount_codes where id = ${w.ticketCode}`;
  assert.deepEqual(row, { value: "5.00", deleted_at: null });
});

Deno.test("[discounts] event codes: one per event, applied through events, shown on the event", async (t) => {
  const w = await world();
  await using system = w.system;
  const { cast, other } = w;
  const admin = system.admin.token;
  await t.step("the event shows its event code", async () => {
    const reply = await system.call("GET", `/v1/events/${cast.event.id}/discount-code`, {
      token: admin,
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.id, w.eventCode);
    const linkage = await system.call(
      "GET",
      `/v1/events/${cast.event.id}/relationships/discount-code`,
      { token: admin },
    );
    assert.deepEqual(linkage.body.data, { type: "discount-code", id: w.eventCode });
    const none = await system.call("GET", `/v1/events/${other.event.id}/discount-code`, {
      token: admin,
    });
    expectStatus(none, 200);
    assert.equal(none.body.data, null);
  });
  await t.step("a second event code on the same event is 409", async () => {
    const reply = await system.postCode(admin, { usedFor: "event", eventIds: [cast.event.id] });
    expectStatus(reply, 409);
  });
  await t.step("an event code may be applied to several events and moved by PATCH", async () => {
    const reply = await system.call("PATCH", `/v1/discount-codes/${w.eventCode}`, {
      token: admin,
      body: {
        data: {
          type: "discount-code",
          id: w.eventCode,
          relationships: { events: { data: [{ type: "event", id: other.event.id }] } },
        },
      },
    });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.relationships.events.data, [{
      type: "event",
      id: other.event.id,
    }]);
    const freed = await system.postCode(admin, { usedFor: "event", eventIds: [cast.event.id] });
    expectStatus(freed, 201);
  });
  await t.step("an event code takes no tickets and an unknown event is 422", async () => {
    expectStatus(
      await system.postCode(admin, { usedFor: "event", ticketIds: [w.ticket] }),
      422,
    );
    expectStatus(await system.postCode(admin, { usedFor: "event", eventIds: ["999999"] }), 422);
  });
  await t.step("a ticket code is not applied to events", async () => {
    expectStatus(
      await system.postCode(admin, { eventId: cast.event.id, eventIds: [other.event.id] }),
      422,
    );
  });
});

Deno.test("[discounts] a draft's codes and ticket codes are not found by those who cannot see it", async () => {
  await using system = await startDiscountsSystem();
  const published = { attributes: { state: "published" } };
  for (
    const [cast, hidden] of [[await system.eventWithCast(), true], [
      await system.eventWithCast(published),
      false,
    ]] as const
  ) {
    const ticket = await system.createTicket(cast.owner.token, cast.event.id, { price: 10 });
    const code = await system.createCode(cast.owner.token, { eventId: cast.event.id });
    const expected = hidden ? 404 : 403;
    for (
      const path of [
        `/v1/discount-codes/${code}`,
        `/v1/tickets/${ticket}/discount-codes`,
        `/v1/tickets/${ticket}/relationships/discount-codes`,
      ]
    ) {
      const reply = await system.call("GET", path, { token: cast.stranger.token });
      expectStatus(reply, expected, `${hidden ? "draft" : "published"} ${path}`);
      // Its co-organizers still read it.
      expectStatus(await system.call("GET", path, { token: cast.coorganizer.token }), 200, path);
    }
  }
});

Deno.test("[discounts] a deleted event's ticket codes are found by admins only with get_trashed", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const ticket = await system.createTicket(cast.owner.token, cast.event.id, { price: 10 });
  await system.createCode(cast.owner.token, { eventId: cast.event.id, ticketIds: [ticket] });
  expectStatus(
    await system.call("DELETE", `/v1/events/${cast.event.id}`, { token: cast.owner.token }),
    200,
  );
  const path = `/v1/tickets/${ticket}/discount-codes`;
  const admin = system.admin.token;
  // The catalog's ticket routes answer the same: 404, then 200 when an admin asks for the trash.
  expectStatus(await system.call("GET", `/v1/tickets/${ticket}`, { token: admin }), 404);
  expectStatus(await system.call("GET", path, { token: admin }), 404, "admin");
  expectStatus(await system.call("GET", path, { token: cast.owner.token }), 404, "owner");
  expectStatus(await system.call("GET", `${path}?get_trashed=true`, { token: admin }), 200);
});

Deno.test("[discounts] a code's creation asks the caller's role again, live, inside its transaction", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const ticketIds = [await system.createTicket(cast.owner.token, eventId, { price: 10 })];
  const coorganizer = cast.coorganizer.token;
  // The first creation leaves discounts a kept answer: a co-organizer of the event.
  await system.createCode(coorganizer, { eventId, ticketIds });
  // Revoked behind discounts' back (no fact, no announcement): the kept answer still allows, as
  // it did for the requests in flight while a revocation committed (a race review: 20 of 24
  // created, the last 57 ms after it).
  await system.sql`delete from users_events_roles where id = ${cast.grants.coorganizer}`;
  const refused = await system.postCode(coorganizer, { eventId, ticketIds });
  expectError(refused, 403);
  const [{ count }] = await system.dsql`select count(*)::int as count from discount_codes`;
  assert.equal(count, 1, "only the first code was stored");
});

Deno.test("[discounts] a trashed code is not found by anyone but admins, asking for the trash or not", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const ticket = await system.createTicket(cast.owner.token, cast.event.id, { price: 10 });
  const code = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
  });
  const path = `/v1/discount-codes/${code}`;
  expectStatus(await system.call("DELETE", path, { token: cast.owner.token }), 200);
  // A 403 to a stranger asking for the trash told them the id was a code (a review).
  for (const who of ["stranger", "coorganizer", "owner"] as const) {
    for (const query of ["", "?get_trashed=true"]) {
      const reply = await system.call("GET", `${path}${query}`, { token: cast[who].token });
      expectError(reply, 404, {}, `${who} ${query}`);
    }
  }
  const purge = `${path}?permanent=true`;
  expectError(await system.call("DELETE", purge, { token: cast.stranger.token }), 404, {}, "purge");
  const admin = system.admin.token;
  expectStatus(await system.call("GET", `${path}?get_trashed=true`, { token: admin }), 200);
});

Deno.test("[discounts] a deleted event's code routes answer admins who ask for the trash, as the event does", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const ticket = await system.createTicket(cast.owner.token, eventId, { price: 10 });
  const code = await system.createCode(cast.owner.token, { eventId, ticketIds: [ticket] });
  expectStatus(
    await system.call("DELETE", `/v1/events/${eventId}`, { token: cast.owner.token }),
    200,
  );
  const admin = system.admin.token;
  const trashed = "?get_trashed=true";
  // The catalog shows the deleted event to an admin asking for the trash, with its relationships'
  // links; those the discounts serve must resolve for them too.
  expectStatus(await system.call("GET", `/v1/events/${eventId}${trashed}`, { token: admin }), 200);
  const paths = [
    `/v1/events/${eventId}/discount-codes`,
    `/v1/events/${eventId}/relationships/discount-codes`,
    `/v1/events/${eventId}/discount-code`,
    `/v1/events/${eventId}/relationships/discount-code`,
  ];
  for (const path of paths) {
    expectError(await system.call("GET", path, { token: admin }), 404, {}, `${path} admin`);
    const owner = await system.call("GET", `${path}${trashed}`, { token: cast.owner.token });
    // The event code's routes are for admins whatever the event (403), the others hide it (404).
    expectError(owner, path.endsWith("discount-code") ? 403 : 404, {}, `${path} owner`);
    expectStatus(await system.call("GET", `${path}${trashed}`, { token: admin }), 200, path);
  }
  const listed = await system.call("GET", `${paths[0]}${trashed}`, { token: admin });
  assert.deepEqual(listed.body.data.map((c: { id: string }) => c.id), [code]);
  assert.ok(listed.body.data[0].attributes["deleted-at"], "the code went to the trash with it");
  const linkage = await system.call("GET", `${paths[1]}${trashed}`, { token: admin });
  assert.deepEqual(linkage.body.data, [{ type: "discount-code", id: code }]);
  const eventCode = await system.call("GET", `${paths[2]}${trashed}`, { token: admin });
  assert.equal(eventCode.body.data, null);
  const unknown = await system.call("GET", `/v1/events/999999/discount-codes${trashed}`, {
    token: admin,
  });
  expectError(unknown, 404, {}, "an event that never was");
});

Deno.test("[discounts] a deleted ticket's code routes answer admins who ask for the trash, as the ticket does", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const token = cast.owner.token;
  const ticket = await system.createTicket(token, cast.event.id, { price: 10 });
  const code = await system.createCode(token, { eventId: cast.event.id, ticketIds: [ticket] });
  // Trashed first, the code keeps the ticket its deletion found (the trash is left as it was).
  expectStatus(await system.call("DELETE", `/v1/discount-codes/${code}`, { token }), 200);
  expectStatus(await system.call("DELETE", `/v1/tickets/${ticket}`, { token }), 200);
  const admin = system.admin.token;
  const trashed = "?get_trashed=true";
  expectStatus(await system.call("GET", `/v1/tickets/${ticket}${trashed}`, { token: admin }), 200);
  for (
    const path of [
      `/v1/tickets/${ticket}/discount-codes`,
      `/v1/tickets/${ticket}/relationships/discount-codes`,
    ]
  ) {
    expectError(await system.call("GET", path, { token: admin }), 404, {}, `${path} admin`);
    const owner = await system.call("GET", `${path}${trashed}`, { token });
    expectError(owner, 404, {}, `${path} owner`);
    const reply = await system.call("GET", `${path}${trashed}`, { token: admin });
    expectStatus(reply, 200, path);
    assert.deepEqual(reply.body.data.map((c: { id: string }) => c.id), [code], path);
  }
  const unknown = await system.call("GET", `/v1/tickets/999999/discount-codes${trashed}`, {
    token: admin,
  });
  expectError(unknown, 404, {}, "a ticket that never was");
});

Deno.test("[discounts] a bad query on a code's routes is 401/403/404 for those who may not see the code", async (t) => {
  await using system = await startDiscountsSystem();
  const published = await system.eventWithCast({ attributes: { state: "published" } });
  const draft = await system.eventWithCast();
  // Inactive: a code the checkout lookup does not show, whose event and tickets keep its rule.
  const code = await system.createCode(published.owner.token, {
    eventId: published.event.id,
    attributes: { "is-active": false },
  });
  const hidden = await system.createCode(draft.owner.token, { eventId: draft.event.id });
  const bad = ["include=bogus", "fields[discount-code]=nope"];
  const routes = (id: string) => [
    ["GET", `/v1/discount-codes/${id}`],
    ["GET", `/v1/discount-codes/${id}/tickets`],
    ["GET", `/v1/discount-codes/${id}/relationships/tickets`],
    ["GET", `/v1/discount-codes/${id}/relationships/event`],
    ["PATCH", `/v1/discount-codes/${id}/relationships/tickets`],
  ];
  const body = (method: string) => method === "PATCH" ? { data: [] } : undefined;
  const expectAll = async (id: string, token: string | undefined, status: number) => {
    for (const [method, path] of routes(id)) {
      for (const query of bad) {
        const reply = await system.call(method, `${path}?${query}`, { token, body: body(method) });
        expectStatus(reply, status, `${method} ${path}?${query}`);
      }
    }
  };

  await t.step("anonymous: 401", () => expectAll(code, undefined, 401));
  await t.step("a stranger to a published event's code: 403", async () => {
    await expectAll(code, published.stranger.token, 403);
  });
  await t.step("a stranger to a draft's code: 404, as for a code that does not exist", async () => {
    await expectAll(hidden, draft.stranger.token, 404);
    await expectAll("999999", draft.stranger.token, 404);
  });
  await t.step("its co-organizers still get the 400 naming the parameter", async () => {
    for (const [method, path] of routes(code)) {
      const reply = await system.call(method, `${path}?include=bogus`, {
        token: published.coorganizer.token,
        body: body(method),
      });
      // The related route hands `include` to the catalog, which checks it as its own routes do.
      expectStatus(reply, 400, `${method} ${path}`);
    }
  });
});

Deno.test("[discounts] a code's writes never tell a stranger that another event's ticket exists", async () => {
  await using system = await startDiscountsSystem();
  const draft = await system.eventWithCast();
  const hidden = await system.createTicket(draft.owner.token, draft.event.id, { price: 20 });
  const mine = await system.eventWithCast();
  const token = mine.owner.token;
  const id = await system.createCode(token, { eventId: mine.event.id });
  const links = (ticket: string) => ({ data: [{ type: "ticket", id: ticket }] });
  // The three writes that attach tickets, each for a ticket of someone else's draft and for one
  // that does not exist: the two answers must be the same but for the id.
  const writes = (ticket: string) => [
    system.postCode(token, { eventId: mine.event.id, ticketIds: [ticket] }),
    system.call("PATCH", `/v1/discount-codes/${id}`, {
      token,
      body: { data: { type: "discount-code", id, relationships: { tickets: links(ticket) } } },
    }),
    system.call("POST", `/v1/discount-codes/${id}/relationships/tickets`, {
      token,
      body: links(ticket),
    }),
  ];
  const seen = await Promise.all(writes(hidden));
  const missing = await Promise.all(writes("999999"));
  for (const [i, reply] of seen.entries()) {
    // The relationship write (the third) points into its own document, `{ data: [...] }`.
    const pointer = i === 2 ? "/data" : "/data/relationships/tickets";
    expectError(reply, 422, { pointer });
    expectError(missing[i], 422, { pointer });
    assert.equal(
      reply.body.errors[0].detail.replace(hidden, "N"),
      missing[i].body.errors[0].detail.replace("999999", "N"),
      `write ${i}: a draft's ticket reads as one that does not exist`,
    );
  }
});
