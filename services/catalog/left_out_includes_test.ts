import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

/**
 * What open-event-frontend (the release of the original v1.10.0's time) asks for events: its
 * home page's lists (routes/index.js), explore (routes/explore.js), the public event page
 * (routes/public.js) and the organizer's event view (routes/events/view.js).
 */
const FRONTEND_INCLUDES = {
  home: "event-topic,event-sub-topic,event-type,speakers-call",
  explore: "event-topic,event-sub-topic,event-type",
  publicPage: "social-links,event-copyright,speakers-call,tax,owner,organizers",
  // Its `stripe-authorization` too, which payments serves (not running in this test).
  organizerView: "event-topic,event-sub-topic,event-type,event-copyright,tax,owner,organizers," +
    "coorganizers,track-organizers,registrars,moderators",
};

const typesOf = (included: { type: string }[] | undefined) =>
  [...new Set((included ?? []).map((resource) => resource.type))].sort();

Deno.test("[catalog] the original's event relationships we have not can be included: empty linkage", async (t) => {
  await using system = await startTestSystem();
  const topic = await system.createTopic();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, {
    attributes: { state: "published" },
    relationships: { "event-topic": { data: { type: "event-topic", id: topic } } },
  });

  await t.step("the home page's and explore's event lists", async () => {
    for (const include of [FRONTEND_INCLUDES.home, FRONTEND_INCLUDES.explore]) {
      const reply = await system.call("GET", `/v1/events?include=${include}`);
      expectStatus(reply, 200);
      assert.deepEqual(reply.body.data.map((e: { id: string }) => e.id), [event.id]);
      assert.deepEqual(typesOf(reply.body.included), ["event-topic"]);
    }
  });

  await t.step("the public event page, by identifier", async () => {
    const path = `/v1/events/${event.identifier}?include=${FRONTEND_INCLUDES.publicPage}`;
    const reply = await system.call("GET", path);
    expectStatus(reply, 200);
    assert.equal(reply.body.data.id, event.id);
    assert.deepEqual(typesOf(reply.body.included), ["user"]);
    const relationships = reply.body.data.relationships;
    assert.deepEqual(relationships.tax, { data: null });
    assert.deepEqual(relationships["speakers-call"], { data: null });
    assert.deepEqual(relationships.organizers, { data: [] });
    assert.deepEqual(relationships["social-links"], { data: [] });
    const plain = await system.call("GET", `/v1/events/${event.identifier}`);
    expectStatus(plain, 200);
    assert.ok(!("tax" in plain.body.data.relationships), "shown only where included");
  });

  await t.step("the organizer's event view", async () => {
    const path = `/v1/events/${event.id}?include=${FRONTEND_INCLUDES.organizerView}`;
    const reply = await system.call("GET", path, { token: owner.token });
    expectStatus(reply, 200);
    assert.deepEqual(typesOf(reply.body.included), ["event-topic", "user"]);
  });

  await t.step("a save sending them back is read as if it had not", async () => {
    const reply = await system.call("PATCH", `/v1/events/${event.id}`, {
      token: owner.token,
      body: {
        data: {
          type: "event",
          id: event.id,
          attributes: { name: "Saved back" },
          relationships: { tax: { data: null }, organizers: { data: [] } },
        },
      },
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes.name, "Saved back");
  });

  await t.step("a name that was no relationship of the original's events stays a 400", async () => {
    const reply = await system.call("GET", `/v1/events?include=event-topic,nope`);
    expectError(reply, 400, { parameter: "include" });
  });
});
