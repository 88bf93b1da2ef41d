import assert from "node:assert/strict";
import { linkageOptionsOf, linkageProblems } from "./jsonapi_check.ts";

const event = (relationships: Record<string, unknown>) => ({
  type: "event",
  id: "1",
  relationships,
});
const ticket = (id: string) => ({ type: "ticket", id });

Deno.test("[shared] linkageProblems accepts a fully linked compound document", () => {
  const doc = {
    data: [event({ tickets: { data: [ticket("7")] }, owner: { data: { type: "user", id: "3" } } })],
    included: [
      { ...ticket("7"), relationships: { event: { data: { type: "event", id: "1" } } } },
      { type: "user", id: "3" },
    ],
  };
  assert.deepEqual(linkageProblems(doc, { include: ["tickets", "owner"] }), []);
});

Deno.test("[shared] linkageProblems reports what breaks full linkage", async (t) => {
  await t.step("an included relationship without data", () => {
    const doc = { data: event({ tickets: { links: {} } }), included: [] };
    assert.deepEqual(linkageProblems(doc, { include: ["tickets"] }), [
      'event 1: relationship "tickets" is included but has no data',
    ]);
  });
  await t.step("an included resource nothing links to", () => {
    const doc = { data: event({ tickets: { data: [] } }), included: [ticket("7")] };
    assert.deepEqual(linkageProblems(doc, { include: ["tickets"] }), [
      "included ticket 7 is not reachable from the primary data",
    ]);
  });
  await t.step("a resource twice", () => {
    const doc = { data: event({ tickets: { data: [ticket("7")] } }), included: [ticket("7")] };
    doc.included.push(ticket("7"));
    assert.deepEqual(linkageProblems(doc), ["ticket 7 appears twice"]);
  });
  await t.step("a missing link deeper in an include path", () => {
    const doc = {
      data: { ...ticket("7"), relationships: { event: { data: { type: "event", id: "1" } } } },
      included: [event({ "event-topic": { links: {} } })],
    };
    assert.deepEqual(linkageProblems(doc, { include: ["event.event-topic"] }), [
      'event 1: relationship "event-topic" is included but has no data',
    ]);
  });
});

Deno.test("[shared] linkageProblems reaches resources through other included ones", () => {
  const doc = {
    data: { ...ticket("7"), relationships: { event: { data: { type: "event", id: "1" } } } },
    included: [
      event({ "event-topic": { data: { type: "event-topic", id: "2" } } }),
      { type: "event-topic", id: "2" },
    ],
  };
  assert.deepEqual(linkageProblems(doc, { include: ["event.event-topic"] }), []);
});

Deno.test("[shared] linkageProblems lets sparse fieldsets drop relationships", () => {
  const doc = { data: event({}), included: [ticket("7")] };
  assert.deepEqual(linkageProblems(doc, { include: ["tickets"], sparse: true }), []);
  assert.equal(linkageProblems(doc, { include: ["tickets"] }).length, 2);
});

Deno.test("[shared] linkageProblems ignores error and meta documents", () => {
  assert.deepEqual(linkageProblems({ errors: [{ status: "400" }] }, { include: ["x"] }), []);
  assert.deepEqual(linkageProblems({ meta: { message: "deleted" } }), []);
});

Deno.test("[shared] linkageOptionsOf reads include paths and sparse fieldsets", () => {
  assert.deepEqual(linkageOptionsOf("/v1/events?include=tickets,owner"), {
    include: ["tickets", "owner"],
    sparse: false,
  });
  assert.deepEqual(linkageOptionsOf("/v1/events/1?fields%5Bevent%5D=name"), {
    include: [],
    sparse: true,
  });
});

Deno.test("[jsonapi_check] a write's answer that says its foreign includes are unavailable passes", () => {
  const doc = {
    data: { type: "event", id: "1", relationships: { "discount-codes": { links: {} } } },
    meta: { "include-unavailable": "The change is done; ..." },
  };
  assert.deepEqual(linkageProblems(doc, { include: ["discount-codes"] }), []);
  const { meta: _, ...silent } = doc;
  assert.equal(linkageProblems(silent, { include: ["discount-codes"] }).length, 1);
});

Deno.test("[jsonapi_check] a relationship document: its identifiers name what is included", async (t) => {
  const options = linkageOptionsOf("/v1/events/1/relationships/tickets?include=tickets.event");
  assert.equal(options.relationship, "tickets");
  const ticket = (id: string) => ({
    type: "ticket",
    id,
    relationships: { event: { data: { type: "event", id: "1" } } },
  });

  await t.step("linked: the tickets by the linkage, their event by the tickets", () => {
    const doc = {
      data: [{ type: "ticket", id: "7" }],
      included: [ticket("7"), { type: "event", id: "1" }],
    };
    assert.deepEqual(linkageProblems(doc, options), []);
  });

  await t.step(
    "not linked: a ticket the linkage does not name, a path off the relationship",
    () => {
      const doc = { data: [{ type: "ticket", id: "7" }], included: [ticket("8")] };
      assert.deepEqual(linkageProblems(doc, { ...options, include: ["tickets", "owner"] }), [
        'include path "owner" does not start at "tickets"',
        "included ticket 8 is not reachable from the primary data",
      ]);
    },
  );
});
