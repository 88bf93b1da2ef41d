/**
 * A resource sent back as it was read is accepted: reads show every to-many relationship, and
 * every to-one that was not included, with `links` and no `data`, and the original's
 * marshmallow-jsonapi skipped such relationships in a body.
 */
import assert from "node:assert/strict";
import { expectStatus, inTopic, startTestSystem, type TestSystem } from "@testing/system.ts";

/** GETs `path` as `token`'s user, changes `attributes`, and PATCHes the whole resource back. */
async function saveBackAsRead(
  system: TestSystem,
  token: string,
  path: string,
  attributes: Record<string, unknown>,
) {
  const read = await system.call("GET", path, { token });
  expectStatus(read, 200);
  const { type, id, relationships } = read.body.data;
  const linksOnly = Object.values(relationships as Record<string, object>)
    .filter((rel) => !("data" in rel));
  assert.ok(linksOnly.length > 0, `${path} reads with relationships that carry links only`);
  const data = {
    type,
    id,
    attributes: { ...read.body.data.attributes, ...attributes },
    relationships,
  };
  return await system.call("PATCH", path, { token, body: { data } });
}

Deno.test("[catalog] events, tickets, topics and sub-topics sent back as read are saved", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topic = await system.createTopic("Science");
  const subTopic = await system.createSubTopic(topic, "Physics");
  const event = await system.createEvent(owner.token, { relationships: inTopic(topic, subTopic) });
  const ticket = await system.createTicket(owner.token, event.id);
  const admin = system.admin.token;
  const cases: [string, string, string, Record<string, unknown>][] = [
    ["an event", owner.token, `/v1/events/${event.id}`, { name: "Renamed event" }],
    ["a ticket", owner.token, `/v1/tickets/${ticket}`, { name: "Renamed ticket" }],
    ["a topic", admin, `/v1/event-topics/${topic}`, { "system-image-url": null }],
    ["a sub-topic", admin, `/v1/event-sub-topics/${subTopic}`, { name: "Optics" }],
  ];
  for (const [name, token, path, attributes] of cases) {
    await t.step(name, async () => {
      const saved = await saveBackAsRead(system, token, path, attributes);
      expectStatus(saved, 200);
      for (const [key, value] of Object.entries(attributes)) {
        assert.deepEqual(saved.body.data.attributes[key], value, key);
      }
    });
  }
  await t.step("links only on a relationship that can be set changes nothing", async () => {
    const path = `/v1/events/${event.id}`;
    const saved = await system.call("PATCH", path, {
      token: owner.token,
      body: {
        data: {
          type: "event",
          id: event.id,
          relationships: { "event-topic": { links: { related: `${path}/event-topic` } } },
        },
      },
    });
    expectStatus(saved, 200);
    const [row] = await system.sql`select event_topic_id from events where id = ${event.id}`;
    assert.equal(String(row.event_topic_id), topic);
  });
});
