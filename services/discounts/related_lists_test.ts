/**
 * `/v1/discount-codes/{id}/tickets` and `/events` are lists (api-surface §1): `page`, `sort` and
 * `filter` as on the catalog's own lists of those types, the catalog listing the code's ids.
 * Until 2026-12-04 they were ignored: every linked resource came, in the code's order.
 */
import assert from "node:assert/strict";
import { type CallResult, expectError, expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

type Resource = { type: string; id: string; attributes: Record<string, unknown> };
const idsOf = (reply: CallResult) => reply.body.data.map((r: Resource) => r.id);

/** The first error's status, source and detail: what two routes must answer alike. */
const errorOf = (reply: CallResult) => {
  const { status, source, detail } = reply.body.errors[0];
  return { status, source, detail };
};

Deno.test("[discounts] a code's tickets are paged, sorted and filtered as an event's tickets are", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const token = cast.coorganizer.token;
  const tickets: string[] = [];
  // 22 tickets, more than a default page (20), with prices and names in different orders.
  for (let i = 0; i < 22; i++) {
    const name = `T${String((i * 7) % 22).padStart(2, "0")}`;
    tickets.push(await system.createTicket(cast.owner.token, eventId, { name, price: 10 + i }));
  }
  // One ticket of the event the code leaves out: it is never listed under the code.
  const [left, ...linked] = tickets;
  const code = await system.createCode(token, { eventId, ticketIds: linked });
  const base = `/v1/discount-codes/${code}/tickets`;
  const get = (path: string) => system.call("GET", path, { token });

  await t.step("the default page holds 20, with the total and a next link", async () => {
    const reply = await get(base);
    expectStatus(reply, 200);
    assert.equal(reply.body.data.length, 20);
    assert.equal(reply.body.meta.count, 21);
    assert.equal(reply.body.links.self, base);
    assert.equal(reply.body.links.next, `${base}?page%5Bnumber%5D=2`);
    assert.equal(reply.body.links.last, `${base}?page%5Bnumber%5D=2`);
    assert.ok(!idsOf(reply).includes(left));
  });

  await t.step("page[size]=0 gives them all", async () => {
    const reply = await get(`${base}?page[size]=0`);
    expectStatus(reply, 200);
    assert.deepEqual([...idsOf(reply)].sort(), [...linked].sort());
    assert.equal(reply.body.meta.count, 21);
    assert.equal(reply.body.links.next, undefined);
  });

  // What the code's route answers is what the event's answers for the same query, less `left`.
  const without = [{ name: "id", op: "ne", val: left }];
  const queries: [string, unknown[] | undefined][] = [
    ["sort=-price&page[size]=5&page[number]=2", undefined],
    ["sort=name&page[size]=4", undefined],
    ["sort=-name&page[size]=6&page[number]=4", undefined],
    ["sort=price", [{ name: "price", op: "ge", val: 20 }]],
    ["page[size]=3", [{
      or: [{ name: "name", op: "like", val: "T1%" }, { name: "price", op: "lt", val: 13 }],
    }]],
  ];
  for (const [query, filter] of queries) {
    await t.step(
      `as the event's own list: ${query} ${JSON.stringify(filter ?? null)}`,
      async () => {
        const ours = filter
          ? `${query}&filter=${encodeURIComponent(JSON.stringify(filter))}`
          : query;
        const theirs = `${query}&filter=${
          encodeURIComponent(JSON.stringify([...filter ?? [], ...without]))
        }`;
        const reply = await get(`${base}?${ours}`);
        const expected = await get(`/v1/events/${eventId}/tickets?${theirs}`);
        expectStatus(reply, 200);
        expectStatus(expected, 200);
        assert.ok(expected.body.data.length > 0, "the comparison compares something");
        assert.deepEqual(idsOf(reply), idsOf(expected));
        assert.equal(reply.body.meta.count, expected.body.meta.count);
        assert.equal(
          reply.body.links.next === undefined,
          expected.body.links.next === undefined,
          "a next link exactly when the event's list has one",
        );
      },
    );
  }

  const refused: [string, string][] = [
    ["sort=nope", "sort"],
    ["sort=-discount-codes", "sort"],
    ["filter=not-json", "filter"],
    [`filter=${encodeURIComponent('[{"name":"nope","op":"eq","val":1}]')}`, "filter"],
    [`filter=${encodeURIComponent('[{"name":"price","op":"sounds-like","val":1}]')}`, "filter"],
    ["page[size]=abc", "page[size]"],
    ["page[size]=1001", "page[size]"],
    ["page[number]=0", "page[number]"],
    ["page[offset]=3", "page[offset]"],
  ];
  for (const [query, parameter] of refused) {
    await t.step(`${query}: the 400 of the event's own list`, async () => {
      const reply = await get(`${base}?${query}`);
      expectError(reply, 400, { parameter });
      const expected = await get(`/v1/events/${eventId}/tickets?${query}`);
      expectError(expected, 400, { parameter });
      assert.deepEqual(errorOf(reply), errorOf(expected));
    });
  }

  await t.step("include, across services too, for the page's tickets only", async () => {
    const reply = await get(`${base}?include=event,discount-codes&sort=-price&page[size]=2`);
    expectStatus(reply, 200);
    assert.deepEqual(idsOf(reply), [linked[20], linked[19]]);
    const included = reply.body.included.map((r: Resource) => `${r.type}:${r.id}`).sort();
    assert.deepEqual(included, [`discount-code:${code}`, `event:${eventId}`]);
    for (const ticket of reply.body.data) {
      assert.deepEqual(ticket.relationships["discount-codes"].data, [
        { type: "discount-code", id: code },
      ]);
    }
  });

  await t.step("a page past the last is empty, with the total", async () => {
    const reply = await get(`${base}?page[number]=9`);
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, []);
    assert.equal(reply.body.meta.count, 21);
  });

  await t.step("who may not see the code gets its 403, whatever the query", async () => {
    // Inactive, so not one the checkout lookup shows: its tickets keep the code's rule.
    await system.dsql`update discount_codes set is_active = false where id = ${code}`;
    const stranger = await system.signUp();
    const reply = await system.call("GET", `${base}?sort=nope`, { token: stranger.token });
    expectError(reply, 403);
  });
});

Deno.test("[discounts] an event code's events are paged, sorted and filtered as the catalog's events are", async (t) => {
  await using system = await startDiscountsSystem();
  const token = system.admin.token;
  const events: string[] = [];
  for (const name of ["Bravo", "Alpha", "Delta", "Charlie"]) {
    const event = await system.createEvent(token, { attributes: { name, state: "published" } });
    events.push(event.id);
  }
  const [left, ...applied] = events;
  const code = await system.createCode(token, { usedFor: "event", eventIds: applied });
  const base = `/v1/discount-codes/${code}/events`;
  const get = (path: string) => system.call("GET", path, { token });

  await t.step("page[size]=2: two, the total, a next link", async () => {
    const reply = await get(`${base}?page[size]=2`);
    expectStatus(reply, 200);
    assert.equal(reply.body.data.length, 2);
    assert.equal(reply.body.meta.count, 3);
    assert.equal(reply.body.links.next, `${base}?page%5Bsize%5D=2&page%5Bnumber%5D=2`);
  });

  await t.step("sort=-name", async () => {
    const reply = await get(`${base}?sort=-name`);
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.map((r: Resource) => r.attributes.name), [
      "Delta",
      "Charlie",
      "Alpha",
    ]);
    assert.ok(!idsOf(reply).includes(left));
  });

  await t.step("a filter", async () => {
    const filter = encodeURIComponent('[{"name":"name","op":"in_","val":["Alpha","Bravo"]}]');
    const reply = await get(`${base}?filter=${filter}`);
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.map((r: Resource) => r.attributes.name), ["Alpha"]);
    assert.equal(reply.body.meta.count, 1);
  });

  await t.step("an unknown sort key: the 400 of the events list", async () => {
    const reply = await get(`${base}?sort=nope`);
    expectError(reply, 400, { parameter: "sort" });
    assert.deepEqual(errorOf(reply), errorOf(await get("/v1/events?sort=nope")));
  });
});

// A description of 20,000 control characters takes 120 kB in JSON (`\u0001`): ten tickets with one
// make a page larger than NATS carries by default (1 MiB), as in services/catalog/large_replies_test.ts.
const LONG = "\u0001".repeat(20_000);

Deno.test("[discounts] a page of a code's tickets too large for the bus is the 400 of the event's list", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const tickets = [];
  for (let i = 0; i < 10; i++) {
    tickets.push(await system.createTicket(cast.owner.token, eventId, { description: LONG }));
  }
  const token = cast.coorganizer.token;
  const code = await system.createCode(token, { eventId, ticketIds: tickets });
  const reply = await system.call("GET", `/v1/discount-codes/${code}/tickets?page[size]=0`, {
    token,
  });
  expectError(reply, 400);
  const expected = await system.call("GET", `/v1/events/${eventId}/tickets?page[size]=0`, {
    token,
  });
  expectError(expected, 400);
  assert.match(reply.body.errors[0].detail, /more than the 1\.00 MiB the bus carries/);
  assert.match(reply.body.errors[0].detail, /page\[size\]/);
  expectStatus(
    await system.call("GET", `/v1/discount-codes/${code}/tickets?page[size]=2`, { token }),
    200,
  );
});
