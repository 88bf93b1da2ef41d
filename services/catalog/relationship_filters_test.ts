/**
 * Filters on an event's relationships, flask-rest-jsonapi's `has` (to-one) and `any` (to-many),
 * as open-event-frontend's explore page sends them (app/routes/explore/events.js): by topic
 * name, by sub-topic slug, by ticket type.
 */
import assert from "node:assert/strict";
import { expectError, expectStatus, inTopic, startTestSystem } from "@testing/system.ts";
import { filteredEventIds, filterParam as filter } from "@testing/event_lists.ts";

const topicNamed = (name: string) => ({
  name: "event-topic",
  op: "has",
  val: { name: "name", op: "eq", val: name },
});
const subTopicSlug = (slug: string) => ({
  name: "event-sub-topic",
  op: "has",
  val: { name: "slug", op: "eq", val: slug },
});
const ticketType = (type: string) => ({
  name: "tickets",
  op: "any",
  val: { name: "type", op: "eq", val: type },
});

Deno.test("[catalog] GET /v1/events filters by topic, sub-topic and ticket as the explore page asks", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const science = await system.createTopic("Science");
  const physics = await system.createSubTopic(science, "Physics");
  const arts = await system.createTopic("Arts");
  const published = { attributes: { state: "published" } };

  const inPhysics = await system.createEvent(owner.token, {
    ...published,
    relationships: inTopic(science, physics),
  });
  await system.createTicket(owner.token, inPhysics.id, { type: "free", price: 0 });
  const inArts = await system.createEvent(owner.token, {
    ...published,
    relationships: inTopic(arts),
  });
  await system.createTicket(owner.token, inArts.id, { type: "paid", price: 5 });
  // A draft matches nothing, whatever its topic and tickets.
  const draft = await system.createEvent(owner.token, { relationships: inTopic(science, physics) });
  await system.createTicket(owner.token, draft.id, { type: "free", price: 0 });
  // No topic; a donation ticket and a free one that is trashed.
  const loose = await system.createEvent(owner.token, published);
  await system.createTicket(owner.token, loose.id, { type: "donation", price: 3 });
  const trashedTicket = await system.createTicket(owner.token, loose.id, {
    type: "free",
    price: 0,
  });
  expectStatus(
    await system.call("DELETE", `/v1/tickets/${trashedTicket}`, { token: owner.token }),
    200,
  );

  const list = (conditions: unknown, token?: string, extra = "") =>
    filteredEventIds(system, conditions, token, extra);

  await t.step("each explore filter returns exactly the matching published events", async () => {
    const explore = [
      { name: "state", op: "eq", val: "published" },
      { name: "privacy", op: "eq", val: "public" },
    ];
    assert.deepEqual(await list([...explore, topicNamed("Science")]), [inPhysics.id]);
    assert.deepEqual(await list([...explore, topicNamed("Arts")]), [inArts.id]);
    assert.deepEqual(await list([...explore, topicNamed("Nothing")]), []);
    assert.deepEqual(await list([...explore, subTopicSlug("physics")]), [inPhysics.id]);
    assert.deepEqual(await list([...explore, ticketType("free")]), [inPhysics.id]);
    assert.deepEqual(await list([...explore, ticketType("paid")]), [inArts.id]);
    assert.deepEqual(await list([...explore, ticketType("donation")]), [loose.id]);
    assert.deepEqual(
      await list([...explore, topicNamed("Science"), subTopicSlug("physics"), ticketType("free")]),
      [inPhysics.id],
    );
    // The original's underscore spelling of the names is read too.
    assert.deepEqual(
      await list([{
        name: "event_topic",
        op: "has",
        val: { name: "name", op: "eq", val: "Arts" },
      }]),
      [inArts.id],
    );
  });

  await t.step("they combine with and, or and not, inside and around", async () => {
    assert.deepEqual(await list({ or: [topicNamed("Science"), topicNamed("Arts")] }), [
      inPhysics.id,
      inArts.id,
    ]);
    assert.deepEqual(await list({ and: [topicNamed("Arts"), ticketType("free")] }), []);
    // No topic at all is "not a topic named Science" too, as SQLAlchemy's `~has()` reads.
    assert.deepEqual(await list({ not: topicNamed("Science") }), [inArts.id, loose.id]);
    assert.deepEqual(
      await list([{
        name: "tickets",
        op: "any",
        val: {
          or: [{ name: "type", op: "eq", val: "free" }, { name: "type", op: "eq", val: "paid" }],
        },
      }]),
      [inPhysics.id, inArts.id],
    );
    assert.deepEqual(
      await list([{
        name: "tickets",
        op: "any",
        val: [{ name: "type", op: "eq", val: "paid" }, { name: "price", op: "gt", val: 4 }],
      }]),
      [inArts.id],
    );
    assert.deepEqual(
      await list([{
        name: "event-topic",
        op: "has",
        val: { not: { name: "name", op: "ilike", val: "sci%" } },
      }]),
      [inArts.id],
    );
  });

  await t.step("trashed related rows match nothing, unless an admin asks get_trashed", async () => {
    // Older data may keep a link to a trashed topic (a delete now unlinks its events).
    // The topic is trashed in SQL, which announces no fact, so the gateway's public cache
    // could serve the list from before; a signed-in reader is never served from it.
    const reader = await system.signUp();
    const old = await system.createTopic("Old");
    const linked = await system.createEvent(owner.token, {
      ...published,
      relationships: inTopic(old),
    });
    assert.deepEqual(await list([topicNamed("Old")], reader.token), [linked.id]);
    await system.sql`update event_topics set deleted_at = now() where id = ${old}`;
    assert.deepEqual(await list([topicNamed("Old")], reader.token), []);
    assert.deepEqual(await list([topicNamed("Old")], system.admin.token), []);
    assert.deepEqual(
      await list([topicNamed("Old")], system.admin.token, "&get_trashed=true"),
      [linked.id],
    );
    // A topic trashed through the API: its name matches nothing.
    const gone = await system.createTopic("Gone");
    await system.createEvent(owner.token, { ...published, relationships: inTopic(gone) });
    expectStatus(
      await system.call("DELETE", `/v1/event-topics/${gone}`, { token: system.admin.token }),
      200,
    );
    assert.deepEqual(await list([topicNamed("Gone")]), []);
    // The loose event's trashed free ticket.
    assert.deepEqual(await list([ticketType("free")], system.admin.token), [
      inPhysics.id,
      draft.id,
    ]);
    assert.deepEqual(
      await list([ticketType("free")], system.admin.token, "&get_trashed=true"),
      [inPhysics.id, draft.id, loose.id],
    );
  });

  await t.step("the owner sees their own draft match, others never do", async () => {
    assert.deepEqual(await list([topicNamed("Science")], owner.token), [inPhysics.id, draft.id]);
    const stranger = await system.signUp();
    assert.deepEqual(await list([topicNamed("Science")], stranger.token), [inPhysics.id]);
  });
});

Deno.test("[catalog] GET /v1/events refuses relationship filters it cannot read (400 naming filter)", async (t) => {
  await using system = await startTestSystem();
  const cases: [string, unknown][] = [
    ["any on a to-one", [{
      name: "event-topic",
      op: "any",
      val: { name: "name", op: "eq", val: "x" },
    }]],
    ["has on a to-many", [{
      name: "tickets",
      op: "has",
      val: { name: "type", op: "eq", val: "free" },
    }]],
    ["eq on a relationship", [{ name: "event-topic", op: "eq", val: "3" }]],
    ["has on an attribute", [{
      name: "name",
      op: "has",
      val: { name: "name", op: "eq", val: "x" },
    }]],
    ["an unknown relationship", [{
      name: "speakers",
      op: "any",
      val: { name: "name", op: "eq", val: "x" },
    }]],
    ["a relationship of another service", [{
      name: "discount-codes",
      op: "any",
      val: { name: "code", op: "eq", val: "x" },
    }]],
    ["an unknown field inside", [{
      name: "event-topic",
      op: "has",
      val: { name: "colour", op: "eq", val: "x" },
    }]],
    ["an unknown op inside", [{
      name: "tickets",
      op: "any",
      val: { name: "type", op: "sounds_like", val: "x" },
    }]],
    ["a bad value inside", [{
      name: "tickets",
      op: "any",
      val: { name: "price", op: "gt", val: "x" },
    }]],
    ["a val that is a string", [{ name: "event-topic", op: "has", val: "Science" }]],
    ["a val that is null", [{ name: "event-topic", op: "has", val: null }]],
    ["a val that is a number", [{ name: "tickets", op: "any", val: 3 }]],
    ["no val", [{ name: "tickets", op: "any" }]],
    ["a nested relationship filter", [{
      name: "tickets",
      op: "any",
      val: { name: "event", op: "has", val: { name: "name", op: "eq", val: "x" } },
    }]],
    ["an attribute of the event inside", [{
      name: "event-topic",
      op: "has",
      val: { name: "state", op: "eq", val: "published" },
    }]],
  ];
  for (const [what, conditions] of cases) {
    await t.step(what, async () => {
      const reply = await system.call("GET", `/v1/events?filter=${filter(conditions)}`);
      expectError(reply, 400, { parameter: "filter" }, what);
      assert.match(reply.body.errors[0].detail, /^Cannot filter: /);
    });
  }
});
