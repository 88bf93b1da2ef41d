import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";
import { settledCache, shortSettle } from "@testing/cache_settle.ts";

type Resource = { type: string; id: string; attributes?: Record<string, unknown> };
const includedOf = (body: { included?: Resource[] }) =>
  (body.included ?? []).map((r) => `${r.type}:${r.id}`).sort();

// JSON:API asks an endpoint to honour `include` or refuse it (400); the original honoured it on
// relationship routes with the parent's paths (flask-rest-jsonapi's ResourceRelationship). Here
// the paths start at the relationship, as in JSON:API's own example
// (`/articles/1/relationships/comments?include=comments.author`), so the document stays linked.
Deno.test("[catalog] relationship routes answer what include and fields ask for on the parent", async (t) => {
  await using system = await startTestSystem({ env: shortSettle });
  const topicId = await system.createTopic();
  const cast = await system.eventWithCast({
    attributes: { state: "published" },
    relationships: { "event-topic": { data: { type: "event-topic", id: topicId } } },
  });
  const eventId = cast.event.id;
  const ticketId = await system.createTicket(cast.owner.token, eventId);

  await t.step("include=tickets: the linkage, and the tickets in included", async () => {
    const path = `/v1/events/${eventId}/relationships/tickets?include=tickets`;
    const reply = await system.call("GET", path);
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, [{ type: "ticket", id: ticketId }]);
    assert.deepEqual(includedOf(reply.body), [`ticket:${ticketId}`]);
    const ticket = await system.call("GET", `/v1/tickets/${ticketId}`, { token: cast.owner.token });
    const included = reply.body.included[0];
    assert.equal(included.attributes.name, ticket.body.data.attributes.name);
  });

  await t.step("fields of the included type apply", async () => {
    const path = `/v1/events/${eventId}/relationships/tickets?include=tickets&fields[ticket]=name`;
    const reply = await system.call("GET", path);
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body), [`ticket:${ticketId}`]);
    assert.deepEqual(Object.keys(reply.body.included[0].attributes), ["name"]);
  });

  await t.step("a path of the parent that does not start at the relationship: 400", async () => {
    // JSON:API's full linkage: the event's topic would be named by nothing in this document.
    const path = `/v1/events/${eventId}/relationships/tickets?include=event-topic`;
    const reply = await system.call("GET", path);
    expectError(reply, 400);
    assert.match(reply.body.errors[0].detail, /"event-topic" is not an include path/);
  });

  await t.step("without include, linkage only, as before", async () => {
    const reply = await system.call("GET", `/v1/events/${eventId}/relationships/event-topic`);
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, { type: "event-topic", id: topicId });
    assert.equal(reply.body.included, undefined);
  });

  await t.step("an include path the parent does not have: 400", async () => {
    const reply = await system.call("GET", `/v1/events/${eventId}/relationships/tickets?include=x`);
    expectError(reply, 400);
    assert.match(reply.body.errors[0].detail, /"x" is not an include path/);
  });

  await t.step("what the caller may not see stays out (a draft event of a topic)", async () => {
    const draft = await system.createEvent(cast.owner.token, {
      relationships: { "event-topic": { data: { type: "event-topic", id: topicId } } },
    });
    const path = `/v1/event-topics/${topicId}/relationships/events?include=events`;
    const anonymous = await system.call("GET", path);
    expectStatus(anonymous, 200);
    assert.deepEqual(includedOf(anonymous.body), [`event:${eventId}`]);
    const owner = await system.call("GET", path, { token: cast.owner.token });
    assert.deepEqual(includedOf(owner.body), [`event:${draft.id}`, `event:${eventId}`].sort());
  });

  await t.step("another user's email stays private on a grant's relationship", async () => {
    const path = `/v1/users-events-roles/${cast.grants.coorganizer}/relationships/user` +
      `?include=user`;
    const reply = await system.call("GET", path, { token: cast.owner.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, { type: "user", id: cast.coorganizer.id });
    assert.deepEqual(includedOf(reply.body), [`user:${cast.coorganizer.id}`]);
    const user = reply.body.included.find((r: Resource) => r.type === "user");
    assert.equal(user.attributes.email, undefined, "another user's email is not shown");
  });

  await t.step("a cached answer drops when an included ticket changes", async () => {
    const path = `/v1/events/${eventId}/relationships/tickets?include=tickets`;
    // Read after the settle window of the writes above (else the entry may lapse in between).
    await settledCache(system);
    await system.call("GET", path);
    const cached = await system.call("GET", path);
    assert.equal(cached.headers.get("X-Cache"), "HIT");
    const body = { data: { type: "ticket", id: ticketId, attributes: { name: "Renamed" } } };
    const patched = await system.call("PATCH", `/v1/tickets/${ticketId}`, {
      token: cast.owner.token,
      body,
    });
    expectStatus(patched, 200);
    const after = await system.call("GET", path);
    assert.equal(after.body.included[0].attributes.name, "Renamed");
  });

  await t.step("a ticket's event relationship includes the event", async () => {
    const path = `/v1/tickets/${ticketId}/relationships/event?include=event`;
    const reply = await system.call("GET", path, { token: cast.owner.token });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body), [`event:${eventId}`]);
  });
});
