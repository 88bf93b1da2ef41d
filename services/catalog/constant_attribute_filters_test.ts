import assert from "node:assert/strict";
import { expectStatus, startTestSystem } from "@testing/system.ts";
import { eventDef } from "./resources.ts";

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
