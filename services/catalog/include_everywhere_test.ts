import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

type Resource = { type: string; id: string; relationships?: Record<string, { data?: unknown }> };
const ids = (data: Resource[] | undefined) => (data ?? []).map((r) => r.id).sort();
const includedOf = (body: { included?: Resource[] }, type: string) =>
  ids(body.included?.filter((r) => r.type === type));
const byId = (data: Resource[], id: string) => data.find((r) => r.id === id)!;

Deno.test("[catalog] include on users: events and roles, for themselves and admins", async (t) => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const draft = await system.createEvent(cast.owner.token);
  const ownerGrants = [cast.grants.owner];
  const draftGrant = (await system.call("GET", `/v1/events/${draft.id}/users-events-roles`, {
    token: cast.owner.token,
  })).body.data[0].id;
  ownerGrants.push(draftGrant);

  await t.step("GET /v1/users?include=events (the frontend's admin page)", async () => {
    const path = "/v1/users?include=events,users-events-roles&page[size]=0";
    const reply = await system.call("GET", path, { token: system.admin.token });
    expectStatus(reply, 200);
    const owner = byId(reply.body.data, cast.owner.id);
    assert.deepEqual(
      ids(owner.relationships!.events.data as Resource[]),
      [
        cast.event.id,
        draft.id,
      ].sort(),
    );
    assert.deepEqual(
      ids(owner.relationships!["users-events-roles"].data as Resource[]),
      [
        ...ownerGrants,
      ].sort(),
    );
    const stranger = byId(reply.body.data, cast.stranger.id);
    assert.deepEqual(stranger.relationships!.events.data, []);
    assert.deepEqual(includedOf(reply.body, "event"), [cast.event.id, draft.id].sort());
  });

  await t.step("a user includes their own events, drafts too", async () => {
    const path = `/v1/users/${cast.owner.id}?include=events`;
    const reply = await system.call("GET", path, { token: cast.owner.token });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "event"), [cast.event.id, draft.id].sort());
  });

  await t.step("an event's owner, seen by others: public, no events, empty linkage", async () => {
    const path = `/v1/events/${cast.event.id}/owner?include=events,users-events-roles`;
    const reply = await system.call("GET", path, { token: cast.stranger.token });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes.email, undefined, "public definition only");
    assert.deepEqual(reply.body.data.relationships.events.data, []);
    assert.deepEqual(reply.body.data.relationships["users-events-roles"].data, []);
    assert.deepEqual(reply.body.included ?? [], []);
  });

  await t.step("an event's owner, seen by themselves: their events", async () => {
    const path = `/v1/events/${cast.event.id}/owner?include=events`;
    const reply = await system.call("GET", path, { token: cast.owner.token });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "event"), [cast.event.id, draft.id].sort());
  });
});

Deno.test("[catalog] include=users-events-roles on events: co-organizers and admins only", async (t) => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const grants = Object.values(cast.grants).sort();
  const path = `/v1/events/${cast.event.id}?include=users-events-roles`;

  await t.step("a co-organizer gets every grant of the event", async () => {
    const reply = await system.call("GET", path, { token: cast.coorganizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(ids(reply.body.data.relationships["users-events-roles"].data), grants);
    assert.deepEqual(includedOf(reply.body, "users-events-role"), grants);
  });

  await t.step("anyone else: none included, empty linkage", async () => {
    for (const token of [cast.stranger.token, undefined]) {
      const reply = await system.call("GET", path, { token });
      expectStatus(reply, 200);
      assert.deepEqual(reply.body.data.relationships["users-events-roles"].data, []);
      assert.deepEqual(reply.body.included ?? [], []);
    }
  });

  await t.step("the list of events too", async () => {
    const reply = await system.call("GET", "/v1/events?include=users-events-roles", {
      token: system.admin.token,
    });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "users-events-role"), grants);
  });
});

Deno.test("[catalog] include=events on topics and sub-topics: drafts only for their people", async (t) => {
  await using system = await startTestSystem();
  const topicId = await system.createTopic("Science");
  const subId = await system.createSubTopic(topicId, "Physics");
  const relationships = {
    "event-topic": { data: { type: "event-topic", id: topicId } },
    "event-sub-topic": { data: { type: "event-sub-topic", id: subId } },
  };
  const cast = await system.eventWithCast({ attributes: { state: "published" }, relationships });
  const draft = await system.createEvent(cast.owner.token, { relationships });

  for (const path of [`/v1/event-topics/${topicId}`, `/v1/event-sub-topics/${subId}`]) {
    await t.step(`${path}?include=events`, async () => {
      const anonymous = await system.call("GET", `${path}?include=events`);
      expectStatus(anonymous, 200);
      assert.deepEqual(ids(anonymous.body.data.relationships.events.data), [cast.event.id]);
      assert.deepEqual(includedOf(anonymous.body, "event"), [cast.event.id]);
      const owner = await system.call("GET", `${path}?include=events`, {
        token: cast.owner.token,
      });
      assert.deepEqual(includedOf(owner.body, "event"), [cast.event.id, draft.id].sort());
    });
  }

  await t.step("lists of topics and sub-topics", async () => {
    for (const path of ["/v1/event-topics", `/v1/event-topics/${topicId}/event-sub-topics`]) {
      const reply = await system.call("GET", `${path}?include=events`);
      expectStatus(reply, 200);
      assert.deepEqual(includedOf(reply.body, "event"), [cast.event.id], path);
    }
  });
});

Deno.test("[catalog] related-resource routes honour include as their type's own routes", async (t) => {
  await using system = await startTestSystem();
  const topicId = await system.createTopic("Arts");
  const subId = await system.createSubTopic(topicId, "Music");
  const cast = await system.eventWithCast({
    attributes: { state: "published" },
    relationships: {
      "event-topic": { data: { type: "event-topic", id: topicId } },
      "event-sub-topic": { data: { type: "event-sub-topic", id: subId } },
    },
  });
  const eventId = cast.event.id;
  const ticketId = await system.createTicket(cast.owner.token, eventId, { name: "A" });
  const token = cast.coorganizer.token;
  const cases: [string, string, string[]][] = [
    [`/v1/events/${eventId}/tickets?include=event`, "event", [eventId]],
    [`/v1/event-topics/${topicId}/event-sub-topics?include=event-topic`, "event-topic", [topicId]],
    [`/v1/events/${eventId}/event-topic?include=event-sub-topics`, "event-sub-topic", [subId]],
    [`/v1/events/${eventId}/event-sub-topic?include=event-topic`, "event-topic", [topicId]],
    [`/v1/event-sub-topics/${subId}/event-topic?include=events`, "event", [eventId]],
    [`/v1/tickets/${ticketId}/event?include=event-topic,tickets`, "event-topic", [topicId]],
    [`/v1/tickets/${ticketId}/event?include=tickets`, "ticket", [ticketId]],
    [`/v1/users-events-roles/${cast.grants.owner}/event?include=owner`, "user", [cast.owner.id]],
  ];
  for (const [path, type, expected] of cases) {
    await t.step(path, async () => {
      const reply = await system.call("GET", path, { token });
      expectStatus(reply, 200);
      assert.deepEqual(includedOf(reply.body, type), expected);
    });
  }

  await t.step("to-one related: the linkage of what was included", async () => {
    const path = `/v1/events/${eventId}/event-topic?include=event-sub-topics`;
    const reply = await system.call("GET", path);
    assert.deepEqual(ids(reply.body.data.relationships["event-sub-topics"].data), [subId]);
  });

  await t.step("an unknown include path is a 400 naming the parameter", async () => {
    const reply = await system.call("GET", `/v1/events/${eventId}/event-topic?include=owner`);
    expectError(reply, 400, { parameter: "include" });
  });
});
