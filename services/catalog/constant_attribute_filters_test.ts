import assert from "node:assert/strict";
import { expectStatus, startTestSystem } from "@testing/system.ts";
import { eventDef, roleDef, ticketDef, userDef } from "./resources.ts";

const filter = (conditions: unknown) => encodeURIComponent(JSON.stringify(conditions));
const ids = (data: { id: string }[]) => data.map((r) => r.id);

Deno.test("[catalog] GET /v1/events filters and sorts on every attribute it shows", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { state: "published" } });

  // Every attribute an event shows, the constant ones too (`is-featured` false, `logo-url`
  // null, ...): the README promises filters on each, and clients send them (the web client's
  // home page asks `is-featured eq true` and `logo-url ne null`). They were a 400.
  for (const name of Object.keys(eventDef.attributes)) {
    await t.step(`${name}: a filter on it and a sort by it`, async () => {
      const set = await system.call(
        "GET",
        `/v1/events?filter=${
          filter([{ name, op: "ne", val: null }, { name: "id", op: "eq", val: event.id }])
        }`,
      );
      expectStatus(set, 200, `filter ${name}`);
      const sorted = await system.call("GET", `/v1/events?sort=-${name}`);
      expectStatus(sorted, 200, `sort ${name}`);
      assert.deepEqual(ids(sorted.body.data), [event.id]);
    });
  }

  await t.step("the constants filter as their values", async () => {
    const cases: [unknown, string[]][] = [
      [[{ name: "is-featured", op: "eq", val: true }], []],
      [[{ name: "is-featured", op: "eq", val: false }], [event.id]],
      [[{ name: "is-event-online", op: "eq", val: "false" }], [event.id]],
      [[{ name: "logo-url", op: "ne", val: null }], []],
      [[{ name: "original-image-url", op: "is_", val: null }], [event.id]],
      [[{ name: "external-event-url", op: "ilike", val: "%http%" }], []],
    ];
    for (const [conditions, expected] of cases) {
      const reply = await system.call("GET", `/v1/events?filter=${filter(conditions)}`);
      expectStatus(reply, 200, JSON.stringify(conditions));
      assert.deepEqual(ids(reply.body.data), expected, JSON.stringify(conditions));
    }
  });
});

Deno.test("[catalog] GET /v1/tickets filters and sorts on every attribute it shows", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { state: "published" } });
  const ticketId = await system.createTicket(owner.token, event.id, { quantity: 40 });
  const paths = [`/v1/events/${event.id}/tickets`, "/v1/tickets"];
  const admin = { token: system.admin.token };

  // `is-hidden` (false), `min-order` (1) and `max-order` (the stock) were a 400 "unknown field".
  for (const name of Object.keys(ticketDef.attributes)) {
    await t.step(`${name}: a filter on it and a sort by it`, async () => {
      for (const path of paths) {
        const set = await system.call(
          "GET",
          `${path}?filter=${filter([{ name, op: "ne", val: null }])}`,
          admin,
        );
        expectStatus(set, 200, `filter ${name} on ${path}`);
        const sorted = await system.call("GET", `${path}?sort=-${name}`, admin);
        expectStatus(sorted, 200, `sort ${name} on ${path}`);
        assert.deepEqual(ids(sorted.body.data), [ticketId]);
      }
    });
  }

  await t.step("the derived ones filter as their values", async () => {
    const cases: [unknown, string[]][] = [
      [[{ name: "is-hidden", op: "eq", val: false }], [ticketId]],
      [[{ name: "is-hidden", op: "eq", val: true }], []],
      [[{ name: "min-order", op: "eq", val: 1 }], [ticketId]],
      [[{ name: "max-order", op: "eq", val: 40 }], [ticketId]],
      [[{ name: "max-order", op: "gt", val: 40 }], []],
    ];
    for (const [conditions, expected] of cases) {
      const reply = await system.call("GET", `${paths[0]}?filter=${filter(conditions)}`);
      expectStatus(reply, 200, JSON.stringify(conditions));
      assert.deepEqual(ids(reply.body.data), expected, JSON.stringify(conditions));
    }
  });
});

Deno.test("[catalog] GET /v1/users and /v1/roles filter and sort on every attribute they show", async (t) => {
  await using system = await startTestSystem();
  const admin = { token: system.admin.token };
  // A user's `is-sales-admin`, `is-marketer` (false) and image URLs (null), and a role's
  // `deleted-at` (null), were a 400 "unknown field" where every other attribute filters.
  const lists: [string, Record<string, unknown>][] = [
    ["/v1/users", userDef.attributes],
    ["/v1/roles", roleDef.attributes],
  ];
  for (const [path, attributes] of lists) {
    for (const name of Object.keys(attributes)) {
      await t.step(`${path} ${name}: a filter on it and a sort by it`, async () => {
        const set = await system.call(
          "GET",
          `${path}?filter=${filter([{ name, op: "ne", val: null }])}`,
          admin,
        );
        expectStatus(set, 200, `filter ${name}`);
        expectStatus(await system.call("GET", `${path}?sort=-${name}`, admin), 200, `sort ${name}`);
      });
    }
  }

  await t.step("the constants filter as their values", async () => {
    const cases: [string, unknown, number][] = [
      ["/v1/users", [{ name: "is-marketer", op: "eq", val: true }], 0],
      ["/v1/users", [{ name: "is-sales-admin", op: "eq", val: false }], 1],
      ["/v1/users", [{ name: "avatar-url", op: "is_", val: null }], 1],
      ["/v1/users", [{ name: "small-image-url", op: "ne", val: null }], 0],
      ["/v1/roles", [{ name: "deleted-at", op: "is_", val: null }], 3],
      ["/v1/roles", [{ name: "deleted-at", op: "isnot", val: null }], 0],
    ];
    for (const [path, conditions, count] of cases) {
      const reply = await system.call("GET", `${path}?filter=${filter(conditions)}`, admin);
      expectStatus(reply, 200, JSON.stringify(conditions));
      assert.equal(reply.body.meta.count, count, JSON.stringify(conditions));
    }
  });
});
