import assert from "node:assert/strict";
import { expectError, expectStatus, inTopic, startTestSystem } from "@testing/system.ts";

/**
 * The requests open-event-frontend (v1.7.0, the release of the original v1.10.0's time) makes
 * for its explore page (app/routes/explore.js) and its public event page (app/routes/public.js,
 * public/index.js and the components they render), as Ember Data sends them.
 */
const filterParam = (conditions: unknown) => encodeURIComponent(JSON.stringify(conditions));

/** What explore lists: published events, of a type by name when one is picked. */
function exploreList(extra: unknown[]): string {
  const now = new Date().toISOString();
  const conditions = [
    { name: "state", op: "eq", val: "published" },
    ...extra,
    { or: [{ name: "starts-at", op: "ge", val: now }, { name: "ends-at", op: "ge", val: now }] },
  ];
  return `/v1/events?include=event-topic,event-sub-topic,event-type&filter=${
    filterParam(conditions)
  }&sort=starts-at&page[size]=6&page[number]=1`;
}

const ofType = (name: string) => ({
  name: "event-type",
  op: "has",
  val: { name: "name", op: "eq", val: name },
});

Deno.test("[catalog] explore's requests succeed: no event types, a type filter matches nothing", async (t) => {
  await using system = await startTestSystem();
  const topic = await system.createTopic();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, {
    attributes: { state: "published" },
    relationships: inTopic(topic),
  });

  await t.step("store.findAll('event-type'): an empty public list", async () => {
    const reply = await system.call("GET", "/v1/event-types");
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, []);
    assert.deepEqual(reply.body.meta, { count: 0 });
    assert.deepEqual(reply.body.links, {
      self: "/v1/event-types",
      first: "/v1/event-types?page%5Bnumber%5D=1",
      last: "/v1/event-types?page%5Bnumber%5D=1",
    });
    const again = await system.call("GET", "/v1/event-types");
    assert.equal(again.headers.get("X-Cache"), "HIT", "a public read that caches share");
    const signedIn = await system.call("GET", "/v1/event-types", { token: owner.token });
    expectStatus(signedIn, 200);
    assert.deepEqual(signedIn.body.data, []);
  });

  await t.step("its query parameters are read as on every list", async () => {
    const filtered = await system.call(
      "GET",
      `/v1/event-types?filter=${filterParam([{ name: "name", op: "eq", val: "Conference" }])}` +
        "&sort=name&page[size]=0",
    );
    expectStatus(filtered, 200);
    assert.deepEqual(filtered.body.data, []);
    const unknown = await system.call(
      "GET",
      `/v1/event-types?filter=${filterParam([{ name: "nope", op: "eq", val: 1 }])}`,
    );
    expectError(unknown, 400, { parameter: "filter" });
  });

  await t.step("one event type is a 404: there are none", async () => {
    expectError(await system.call("GET", "/v1/event-types/1"), 404);
  });

  await t.step("the event list, with and without a type picked", async () => {
    const all = await system.call("GET", exploreList([]));
    expectStatus(all, 200);
    assert.deepEqual(all.body.data.map((e: { id: string }) => e.id), [event.id]);

    const typed = await system.call("GET", exploreList([ofType("Conference")]));
    expectStatus(typed, 200);
    assert.deepEqual(typed.body.data, []);
    assert.deepEqual(typed.body.meta, { count: 0 });

    // Matches nothing, so its negation matches every event the rest of the filter does.
    const untyped = await system.call("GET", exploreList([{ not: ofType("Conference") }]));
    expectStatus(untyped, 200);
    assert.deepEqual(untyped.body.data.map((e: { id: string }) => e.id), [event.id]);
  });

  await t.step("a type filter is still checked as every relationship filter", async () => {
    const wrongOp = await system.call(
      "GET",
      `/v1/events?filter=${filterParam([{ ...ofType("Conference"), op: "any" }])}`,
    );
    expectError(wrongOp, 400, { parameter: "filter" });
    const unknownField = await system.call(
      "GET",
      `/v1/events?filter=${
        filterParam([{ name: "event-type", op: "has", val: { name: "nope", op: "eq", val: 1 } }])
      }`,
    );
    expectError(unknownField, 400, { parameter: "filter" });
  });
});

Deno.test("[catalog] the public event page's requests succeed and ask for no speakers", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { state: "published" } });
  const page = await system.call(
    "GET",
    `/v1/events/${event.identifier}?include=social-links,event-copyright,speakers-call,tax,owner,organizers`,
  );
  expectStatus(page, 200);
  const relationships = page.body.data.relationships;
  // Ember Data follows a has-many it has no data of through its `related` link only: without
  // either, `event.query('speakers', ...)` and `event.get('sponsors')` resolve to no records
  // and send nothing, so the page needs no speakers or sponsors route.
  for (const name of ["speakers", "sponsors", "sessions"]) {
    assert.ok(!(name in relationships), `${name} is not offered to follow`);
  }
  assert.deepEqual(relationships.tax, { data: null });
  const tickets = await system.call("GET", relationships.tickets.links.related);
  expectStatus(tickets, 200);
});

Deno.test("[catalog] the public event page's ticket list: the bracketed filter it sends is read", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { state: "published" } });
  const day = 24 * 3600 * 1000;
  const at = (offset: number) => new Date(Date.now() + offset).toISOString();
  const window = (starts: number, ends: number) => ({
    "sales-starts-at": at(starts),
    "sales-ends-at": at(ends),
  });
  const onSale = await system.createTicket(owner.token, event.id, window(-day, day));
  await system.createTicket(owner.token, event.id, window(day, 2 * day));
  await system.createTicket(owner.token, event.id, window(-2 * day, -day));

  // app/routes/public/index.js: event.query('tickets', {filter: [{and: [...]}]}), which
  // ember-data-has-many-query sends through ember-fetch's jQuery.param-style serialisation.
  const now = new Date().toISOString();
  const sent: [string, string][] = [
    ["reload", "true"],
    ["filter[0][and][0][name]", "sales-starts-at"],
    ["filter[0][and][0][op]", "le"],
    ["filter[0][and][0][val]", now],
    ["filter[0][and][1][name]", "sales-ends-at"],
    ["filter[0][and][1][op]", "ge"],
    ["filter[0][and][1][val]", now],
  ];
  const query = sent.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  const tickets = await system.call("GET", `/v1/events/${event.id}/tickets?${query.join("&")}`);
  expectStatus(tickets, 200);
  assert.deepEqual(tickets.body.data.map((t: { id: string }) => t.id), [onSale]);

  const json = [{
    and: [
      { name: "sales-starts-at", op: "le", val: now },
      { name: "sales-ends-at", op: "ge", val: now },
    ],
  }];
  const same = await system.call(
    "GET",
    `/v1/events/${event.id}/tickets?filter=${filterParam(json)}`,
  );
  expectStatus(same, 200);
  assert.deepEqual(same.body.data, tickets.body.data, "the JSON form's answer");

  const both = await system.call(
    "GET",
    `/v1/events/${event.id}/tickets?filter=${filterParam(json)}&${query.join("&")}`,
  );
  expectError(both, 400, { parameter: "filter" });
});
