import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { MAX_INCLUDED_RELATIONSHIPS } from "@shared/query.ts";
// The catalog's names of an event's relationships it keeps no data for (includable, empty).
import { EVENT_RELATIONSHIPS_LEFT_OUT } from "../catalog/resources.ts";
import { codeWithTicket, startDiscountsSystem } from "./_test_utils.ts";

type Resource = { type: string; id: string };
const includedOf = (body: { included?: Resource[] }, type: string) =>
  (body.included ?? []).filter((r) => r.type === type).map((r) => r.id).sort();

Deno.test("[discounts] include=discount-codes on users: the codes they created, for them and admins", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const ticketId = await system.createTicket(cast.owner.token, cast.event.id, {
    type: "paid",
    price: 20,
  });
  const code = await system.createCode(cast.coorganizer.token, {
    eventId: cast.event.id,
    ticketIds: [ticketId],
  });
  const linkage = [{ type: "discount-code", id: code }];

  await t.step("GET /v1/users?include=discount-codes as an admin", async () => {
    const reply = await system.call("GET", "/v1/users?include=discount-codes&page[size]=0", {
      token: system.admin.token,
    });
    expectStatus(reply, 200);
    const marketer = reply.body.data.find((u: Resource) => u.id === cast.coorganizer.id);
    assert.deepEqual(marketer.relationships["discount-codes"].data, linkage);
    const other = reply.body.data.find((u: Resource) => u.id === cast.owner.id);
    assert.deepEqual(other.relationships["discount-codes"].data, []);
    assert.deepEqual(includedOf(reply.body, "discount-code"), [code]);
  });

  await t.step("a user includes their own codes", async () => {
    const path = `/v1/users/${cast.coorganizer.id}?include=discount-codes`;
    const reply = await system.call("GET", path, { token: cast.coorganizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.relationships["discount-codes"].data, linkage);
  });

  await t.step("nobody else learns them", async () => {
    const path = `/v1/users-events-roles/${cast.grants.coorganizer}/user?include=discount-codes`;
    const reply = await system.call("GET", path, { token: cast.owner.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.relationships["discount-codes"].data, []);
    assert.deepEqual(reply.body.included ?? [], []);
  });
});

Deno.test("[discounts] a code's related catalog resources honour include", async (t) => {
  await using system = await startDiscountsSystem();
  const { topicId, eventId, ticketId, code, token } = await codeWithTicket(system);

  await t.step("/tickets?include=event", async () => {
    const reply = await system.call("GET", `/v1/discount-codes/${code}/tickets?include=event`, {
      token,
    });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "event"), [eventId]);
    assert.deepEqual(reply.body.data[0].relationships.event.data, { type: "event", id: eventId });
  });

  await t.step("/event?include=event-topic,tickets", async () => {
    const path = `/v1/discount-codes/${code}/event?include=event-topic,tickets`;
    const reply = await system.call("GET", path, { token });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "event-topic"), [topicId]);
    assert.deepEqual(includedOf(reply.body, "ticket"), [ticketId]);
    assert.deepEqual(reply.body.data.relationships.tickets.data, [
      { type: "ticket", id: ticketId },
    ]);
  });

  await t.step("/event?include=discount-codes: served by discounts, linked", async () => {
    const path = `/v1/discount-codes/${code}/event?include=discount-codes`;
    const reply = await system.call("GET", path, { token });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "discount-code"), [code]);
    assert.deepEqual(reply.body.data.relationships["discount-codes"].data, [
      { type: "discount-code", id: code },
    ]);
  });

  await t.step(
    "/event?include=discount_codes: a path in underscores, as the original took it",
    async () => {
      const path = `/v1/discount-codes/${code}/event?include=discount_codes,event_topic`;
      const reply = await system.call("GET", path, { token });
      expectStatus(reply, 200);
      assert.deepEqual(includedOf(reply.body, "discount-code"), [code]);
      assert.deepEqual(includedOf(reply.body, "event-topic"), [topicId]);
    },
  );

  await t.step("an unknown include path is a 400 naming the parameter", async () => {
    const path = `/v1/discount-codes/${code}/tickets?include=nope`;
    expectError(await system.call("GET", path, { token }), 400, { parameter: "include" });
  });

  await t.step("an empty include path is a 400, as on the catalog's own routes", async () => {
    // Until 2026-12-05 an empty path was lost on the way to the catalog (`include=,` a 200).
    for (const route of ["event", "marketer", "tickets"]) {
      for (const include of [",", "event-topic,", ",event-topic"]) {
        const path = `/v1/discount-codes/${code}/${route}?include=${include}`;
        const refused = await system.call("GET", path, { token });
        expectError(refused, 400, { parameter: "include" }, path);
      }
    }
  });

  await t.step(
    "as many paths as an include may go through; more is a 400, never a 500",
    async () => {
      // Until 2026-12-05 the bus request to the catalog took 20 paths: 21 to 40 valid ones failed.
      const names = [
        "event-topic",
        "event-sub-topic",
        "tickets",
        "owner",
        ...EVENT_RELATIONSHIPS_LEFT_OUT,
      ];
      const paths = names.slice(0, MAX_INCLUDED_RELATIONSHIPS);
      assert.ok(paths.length > 20, `${paths.length} paths`);
      const path = `/v1/discount-codes/${code}/event?include=`;
      expectStatus(await system.call("GET", path + paths.join(), { token }), 200);
      const tooMany = Array.from({ length: MAX_INCLUDED_RELATIONSHIPS + 1 }, (_, i) => `p${i}`);
      expectError(await system.call("GET", path + tooMany.join(), { token }), 400, {
        parameter: "include",
      });
    },
  );
});

const attributeNames = (resource: { attributes: Record<string, unknown> }) =>
  Object.keys(resource.attributes).sort();

Deno.test("[discounts] catalog resources in a code's documents honour fields as the catalog's routes do", async (t) => {
  await using system = await startDiscountsSystem();
  const { eventId, code, token } = await codeWithTicket(system);
  const get = (path: string) => system.call("GET", path, { token });
  const included = (
    body: { included?: (Resource & { attributes: Record<string, unknown> })[] },
    type: string,
  ) => (body.included ?? []).filter((r) => r.type === type);

  await t.step("/event?fields[event]=name (a 400 before)", async () => {
    const reply = await get(`/v1/discount-codes/${code}/event?fields[event]=name`);
    expectStatus(reply, 200);
    assert.deepEqual(attributeNames(reply.body.data), ["name"]);
    assert.deepEqual(reply.body.data.relationships ?? {}, {});
  });

  await t.step("/tickets?fields[ticket]=name,price", async () => {
    const reply = await get(`/v1/discount-codes/${code}/tickets?fields[ticket]=name,price`);
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.map(attributeNames), [["name", "price"]]);
  });

  await t.step("/event?include=event-topic with fieldsets of both types", async () => {
    const query = "include=event-topic&fields[event]=name,event-topic&fields[event-topic]=slug";
    const reply = await get(`/v1/discount-codes/${code}/event?${query}`);
    expectStatus(reply, 200);
    assert.deepEqual(attributeNames(reply.body.data), ["name"]);
    assert.deepEqual(Object.keys(reply.body.data.relationships), ["event-topic"]);
    assert.deepEqual(included(reply.body, "event-topic").map(attributeNames), [["slug"]]);
  });

  await t.step("a code and an event's codes with include=event&fields[event]=name", async () => {
    for (
      const path of [
        `/v1/discount-codes/${code}?include=event&fields[event]=name`,
        `/v1/events/${eventId}/discount-codes?include=event&fields[event]=name`,
      ]
    ) {
      const reply = await get(path);
      expectStatus(reply, 200, path);
      assert.deepEqual(included(reply.body, "event").map(attributeNames), [["name"]], path);
      const primary = [reply.body.data].flat()[0];
      assert.ok(attributeNames(primary).includes("code"), path);
    }
  });

  await t.step("an unknown name or type is a 400 naming its fieldset", async () => {
    const cases: [string, string][] = [
      [`/v1/discount-codes/${code}/event?fields[event]=nope`, "fields[event]"],
      [`/v1/discount-codes/${code}/tickets?fields[ticket]=name,nope`, "fields[ticket]"],
      [`/v1/discount-codes/${code}/event?fields[nope]=name`, "fields[nope]"],
      [`/v1/discount-codes/${code}?include=event&fields[event]=nope`, "fields[event]"],
      [`/v1/events/${eventId}/discount-codes?include=event&fields[event]=nope`, "fields[event]"],
    ];
    for (const [path, parameter] of cases) expectError(await get(path), 400, { parameter }, path);
  });
});

// The original honoured `include` on relationship routes; the paths start at the relationship,
// as in JSON:API's example, and what the catalog owns the gateway adds (the linkage names it:
// it counts as still to be included, not as present).
Deno.test("[discounts] relationship routes answer what include and fields ask for", async (t) => {
  await using system = await startDiscountsSystem();
  const { eventId, ticketId, code, token } = await codeWithTicket(system);
  const get = (path: string) => system.call("GET", path, { token });

  await t.step("a code's event and tickets relationships include them", async () => {
    const event = await get(`/v1/discount-codes/${code}/relationships/event?include=event`);
    expectStatus(event, 200);
    assert.deepEqual(event.body.data, { type: "event", id: eventId });
    assert.deepEqual(includedOf(event.body, "event"), [eventId]);
    const path = `/v1/discount-codes/${code}/relationships/tickets?include=tickets` +
      `&fields[ticket]=name`;
    const tickets = await get(path);
    expectStatus(tickets, 200);
    assert.deepEqual(includedOf(tickets.body, "ticket"), [ticketId]);
    assert.deepEqual(Object.keys(tickets.body.included[0].attributes), ["name"]);
  });

  await t.step("an event's codes relationship includes the codes, with their fields", async () => {
    const path = `/v1/events/${eventId}/relationships/discount-codes?include=discount-codes` +
      `&fields[discount-code]=code`;
    const reply = await get(path);
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, [{ type: "discount-code", id: code }]);
    assert.deepEqual(includedOf(reply.body, "discount-code"), [code]);
    assert.deepEqual(Object.keys(reply.body.included[0].attributes), ["code"]);
  });

  // A client that sends one set of fieldsets with every request of an event's page: the parent's
  // other relationship routes (the catalog's, payments') take the parent's own fieldset, as the
  // original did (a 400 "unknown type" here until 2026-12-05, a review).
  await t.step("a fieldset of the parent is taken as on its other routes", async () => {
    for (
      const path of [
        `/v1/events/${eventId}/relationships/discount-codes?fields[event]=name`,
        `/v1/tickets/${ticketId}/relationships/discount-codes?fields[ticket]=name`,
      ]
    ) {
      const reply = await get(path);
      expectStatus(reply, 200, path);
      assert.deepEqual(reply.body.data, [{ type: "discount-code", id: code }], path);
    }
  });

  await t.step("a path that does not start at the relationship is a 400", async () => {
    for (
      const path of [
        `/v1/discount-codes/${code}/relationships/event?include=tickets`,
        `/v1/events/${eventId}/relationships/discount-codes?include=event-topic`,
        `/v1/tickets/${ticketId}/relationships/discount-codes?include=event`,
      ]
    ) {
      expectError(await get(path), 400, { parameter: "include" }, path);
    }
  });

  await t.step(
    "a relationship write answers with its includes; a bad include writes nothing",
    async () => {
      const second = await system.createTicket(token, eventId, { type: "paid", price: 30 });
      const refused = await system.call(
        "POST",
        `/v1/discount-codes/${code}/relationships/tickets?include=nope`,
        { token, body: { data: [{ type: "ticket", id: second }] } },
      );
      expectError(refused, 400, { parameter: "include" });
      const unchanged = await get(`/v1/discount-codes/${code}/relationships/tickets`);
      assert.deepEqual(unchanged.body.data, [{ type: "ticket", id: ticketId }]);
      const added = await system.call(
        "POST",
        `/v1/discount-codes/${code}/relationships/tickets?include=tickets`,
        { token, body: { data: [{ type: "ticket", id: second }] } },
      );
      expectStatus(added, 200);
      assert.deepEqual(includedOf(added.body, "ticket"), [ticketId, second].sort());
    },
  );
});

// Found by a review: a code's fieldset on the catalog's routes was only trimmed by the gateway
// (every included code with `"attributes": {}`), and a write carrying it went through.
Deno.test("[discounts] fields[discount-code] on the catalog's routes is checked by discounts", async (t) => {
  await using system = await startDiscountsSystem();
  const { eventId, ticketId, code, token } = await codeWithTicket(system);
  const bogus = "fields[discount-code]=bogus";

  await t.step("reads that include codes: 400 naming the fieldset", async () => {
    for (
      const path of [
        `/v1/events/${eventId}?include=discount-codes&${bogus}`,
        `/v1/tickets/${ticketId}?include=discount-codes&${bogus}`,
        `/v1/events?include=discount-codes&${bogus}`,
      ]
    ) {
      const reply = await system.call("GET", path, { token });
      expectError(reply, 400, { parameter: "fields[discount-code]" }, path);
    }
  });

  await t.step("a good fieldset still trims the included codes", async () => {
    const path = `/v1/events/${eventId}?include=discount-codes&fields[discount-code]=code`;
    const reply = await system.call("GET", path, { token });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "discount-code"), [code]);
    assert.deepEqual(Object.keys(reply.body.included[0].attributes), ["code"]);
  });

  await t.step("a write with it is a 400 that wrote nothing", async () => {
    const count = async () =>
      (await system.call("GET", "/v1/events?page[size]=1", { token: system.admin.token })).body
        .meta.count;
    const before = await count();
    const starts = new Date(Date.now() + 86_400_000);
    const body = {
      data: {
        type: "event",
        attributes: {
          name: "Refused",
          "starts-at": starts.toISOString(),
          "ends-at": new Date(starts.getTime() + 3_600_000).toISOString(),
        },
      },
    };
    const reply = await system.call("POST", `/v1/events?include=discount-codes&${bogus}`, {
      token,
      body,
    });
    expectError(reply, 400, { parameter: "fields[discount-code]" });
    assert.equal(await count(), before);
  });
});
