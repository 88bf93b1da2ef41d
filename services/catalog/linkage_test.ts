import assert from "node:assert/strict";
import { expectStatus, startTestSystem } from "@testing/system.ts";

type Identifier = { type: string; id: string };
const ids = (data: Identifier[]) => data.map((r) => r.id).sort();

Deno.test("[catalog] GET with include gives to-many relationships their linkage", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topicId = await system.createTopic("Linkage");
  const subTopicIds = [
    await system.createSubTopic(topicId, "First"),
    await system.createSubTopic(topicId, "Second"),
  ];
  const relationships = {
    "event-topic": { data: { type: "event-topic", id: topicId } },
    "event-sub-topic": { data: { type: "event-sub-topic", id: subTopicIds[0] } },
  };
  const withTickets = await system.createEvent(owner.token, {
    attributes: { state: "published" },
    relationships,
  });
  const without = await system.createEvent(owner.token, { attributes: { state: "published" } });
  const ticketIds = [
    await system.createTicket(owner.token, withTickets.id, { name: "A" }),
    await system.createTicket(owner.token, withTickets.id, { name: "B" }),
  ].sort();

  await t.step("an event's tickets", async () => {
    const reply = await system.call("GET", `/v1/events/${withTickets.id}?include=tickets`);
    expectStatus(reply, 200);
    assert.deepEqual(ids(reply.body.data.relationships.tickets.data), ticketIds);
    assert.deepEqual(ids(reply.body.included), ticketIds);
  });

  await t.step("a topic's sub-topics", async () => {
    const reply = await system.call("GET", `/v1/event-topics/${topicId}?include=event-sub-topics`);
    expectStatus(reply, 200);
    assert.deepEqual(
      ids(reply.body.data.relationships["event-sub-topics"].data),
      [...subTopicIds].sort(),
    );
  });

  await t.step("a list with to-one and to-many includes; an event without tickets", async () => {
    const path = "/v1/events?include=event-topic,event-sub-topic,tickets&sort=created-at";
    const reply = await system.call("GET", path);
    expectStatus(reply, 200);
    const [first, second] = reply.body.data;
    assert.equal(first.id, withTickets.id);
    assert.deepEqual(ids(first.relationships.tickets.data), ticketIds);
    assert.deepEqual(first.relationships["event-topic"].data, { type: "event-topic", id: topicId });
    assert.equal(second.id, without.id);
    assert.deepEqual(second.relationships.tickets.data, [], "no tickets: empty linkage");
    assert.equal(second.relationships["event-topic"].data, null);
  });

  await t.step("without include, to-many relationships keep only their links", async () => {
    const reply = await system.call("GET", `/v1/events/${withTickets.id}`);
    expectStatus(reply, 200);
    assert.equal(reply.body.data.relationships.tickets.data, undefined);
    assert.ok(reply.body.data.relationships.tickets.links.related);
  });
});
