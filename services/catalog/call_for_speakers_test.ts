/**
 * An event's `is-sessions-speakers-enabled`: whether it has a call for speakers, which no event
 * here can have (no sessions, speakers or calls for speakers), so always false. open-event-frontend
 * filters its explore page on it (`is_sessions_speakers_enabled` eq true for "Open", false for
 * "Closed"), reads it on the home page and the event views, and sends it on every event save.
 */
import assert from "node:assert/strict";
import { expectStatus, startTestSystem } from "@testing/system.ts";
import { filteredEventIds, sortedIds } from "@testing/event_lists.ts";

const cfs = (op: string, val: unknown) => ({ name: "is_sessions_speakers_enabled", op, val });
const NAME = "is-sessions-speakers-enabled";

Deno.test("[catalog] GET /v1/events answers the call-for-speakers filter: no event has one", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const published = await system.createEvent(owner.token, { attributes: { state: "published" } });
  const draft = await system.createEvent(owner.token);
  const both = [published.id, draft.id];

  const list = (conditions: unknown, token?: string, extra = "") =>
    filteredEventIds(system, conditions, token, extra);

  await t.step("explore's Open and Closed, as the page sends them", async () => {
    // app/routes/explore.js (v1.7.0): published, upcoming, `val` the boolean `cfs === 'open'`,
    // with the page's include and sort. It was a 400 that failed the whole list.
    const now = new Date().toISOString();
    const explore = (open: boolean) => [
      { name: "state", op: "eq", val: "published" },
      cfs("eq", open),
      { or: [{ name: "starts-at", op: "ge", val: now }, { name: "ends-at", op: "ge", val: now }] },
    ];
    const page = "&include=event-topic,event-sub-topic,event-type&sort=starts-at";
    assert.deepEqual(await list(explore(true), undefined, page), []);
    assert.deepEqual(await list(explore(false), undefined, page), [published.id]);
  });

  await t.step("every op reads it as a boolean column that is always false", async () => {
    const cases: [unknown, string[]][] = [
      [[cfs("eq", false)], both],
      [[cfs("eq", "True")], []],
      [[cfs("ne", true)], both],
      [[cfs("ne", false)], []],
      [[cfs("in_", [true])], []],
      [[cfs("in_", [false, true])], both],
      [[cfs("notin_", [false])], []],
      [[cfs("is_", null)], []],
      [[cfs("isnot", null)], both],
      [[cfs("lt", true)], both],
      [[cfs("gt", false)], []],
      [{ not: cfs("eq", true) }, both],
      // The dasherized name, as every attribute takes both spellings.
      [[{ name: NAME, op: "eq", val: false }], both],
    ];
    for (const [conditions, expected] of cases) {
      // The owner sees the draft too.
      assert.deepEqual(await list(conditions, owner.token), expected, JSON.stringify(conditions));
    }
  });

  await t.step("events show it, false, and lists sort by it", async () => {
    const one = await system.call("GET", `/v1/events/${published.id}`);
    expectStatus(one, 200);
    assert.equal(one.body.data.attributes[NAME], false);
    const sorted = await system.call("GET", `/v1/events?sort=-${NAME}`, { token: owner.token });
    expectStatus(sorted, 200);
    assert.deepEqual(sortedIds(sorted.body.data), both);
  });
});

Deno.test("[catalog] POST and PATCH /v1/events take is-sessions-speakers-enabled and keep it false", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();

  // The web client's event model sends it on every save (false unless its wizard's sessions and
  // speakers step was turned on). Ignored, as the event's other constants are when sent
  // (`is-featured`, `is-event-online`): what the event shows stays what is true here.
  for (const sent of [false, true]) {
    await t.step(`sent ${sent}`, async () => {
      const event = await system.createEvent(owner.token, { attributes: { [NAME]: sent } });
      assert.equal(event.resource.attributes[NAME], false);
      const patched = await system.call("PATCH", `/v1/events/${event.id}`, {
        token: owner.token,
        body: { data: { type: "event", id: event.id, attributes: { [NAME]: sent } } },
      });
      expectStatus(patched, 200);
      assert.equal(patched.body.data.attributes[NAME], false);
    });
  }
});
