/**
 * An event's topic and sub-topic stay a pair that resolves: deleting or moving a topic or
 * sub-topic unlinks its events (each announced), and an event saved back as read is accepted.
 */
import assert from "node:assert/strict";
import {
  type CallResult,
  expectStatus,
  inTopic,
  startTestSystem,
  type TestFact,
  type TestSystem,
} from "@testing/system.ts";
import { untilWaitingForLocks } from "@testing/table_lock.ts";

type Links = { topic: string | null; sub: string | null };

async function linksOf(system: TestSystem, eventId: string): Promise<Links> {
  const [row] = await system.sql`select event_topic_id, event_sub_topic_id from events
    where id = ${eventId}`;
  const id = (value: unknown) => value === null ? null : String(value);
  return { topic: id(row.event_topic_id), sub: id(row.event_sub_topic_id) };
}

/** Every fact published from here on, as "type id" lines, in stream order. */
async function factsSince(system: TestSystem, before: number): Promise<TestFact[]> {
  return (await system.readFacts()).slice(before);
}

function described(facts: TestFact[]): string[] {
  return facts.map((fact) => `${fact.type} ${fact.data.id}`);
}

/** PATCH of the event with the relationships (and only those) a client read back. */
function saveBack(system: TestSystem, token: string, read: CallResult): Promise<CallResult> {
  const { id, type, relationships } = read.body.data;
  const data = {
    id,
    type,
    relationships: Object.fromEntries(
      ["event-topic", "event-sub-topic"].map((name) => [name, { data: relationships[name].data }]),
    ),
  };
  return system.call("PATCH", `/v1/events/${id}`, { token, body: { data } });
}

function patchRelationships(
  system: TestSystem,
  token: string,
  eventId: string,
  relationships: Record<string, unknown>,
): Promise<CallResult> {
  const body = { data: { type: "event", id: eventId, relationships } };
  return system.call("PATCH", `/v1/events/${eventId}`, { token, body });
}

Deno.test("[catalog] DELETE /v1/event-topics/{id} (soft) unlinks its events and trashes its sub-topics", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topic = await system.createTopic("Trashed");
  const [sub, emptySub] = [
    await system.createSubTopic(topic, "With an event"),
    await system.createSubTopic(topic, "Empty"),
  ];
  const published = { state: "published" };
  const withSub = await system.createEvent(owner.token, {
    attributes: published,
    relationships: inTopic(topic, sub),
  });
  const topicOnly = await system.createEvent(owner.token, {
    attributes: published,
    relationships: inTopic(topic),
  });
  const before = (await system.readFacts()).length;
  expectStatus(
    await system.call("DELETE", `/v1/event-topics/${topic}`, { token: system.admin.token }),
    200,
  );

  await t.step("its events are unlinked from it and its sub-topics", async () => {
    assert.deepEqual(await linksOf(system, withSub.id), { topic: null, sub: null });
    assert.deepEqual(await linksOf(system, topicOnly.id), { topic: null, sub: null });
  });

  await t.step("its live sub-topics are soft-deleted with it", async () => {
    const rows = await system.sql`select id from event_sub_topics
      where event_topic_id = ${topic} and deleted_at is null`;
    assert.equal(rows.length, 0);
    for (const id of [sub, emptySub]) {
      assert.equal((await system.call("GET", `/v1/event-sub-topics/${id}`)).status, 404);
    }
  });

  await t.step("each change has its fact, dependents first", async () => {
    const facts = await factsSince(system, before);
    const lines = described(facts);
    assert.deepEqual(
      lines.slice(0, 2).sort(),
      [
        `catalog.event.updated ${topicOnly.id}`,
        `catalog.event.updated ${withSub.id}`,
      ].sort(),
    );
    assert.deepEqual(
      lines.slice(2, 4).sort(),
      [
        `catalog.event-sub-topic.deleted ${emptySub}`,
        `catalog.event-sub-topic.deleted ${sub}`,
      ].sort(),
    );
    assert.deepEqual(lines.slice(4), [`catalog.event-topic.deleted ${topic}`]);
    for (const fact of facts.slice(0, 2)) {
      assert.equal(fact.data["event-topic"], null);
      assert.equal(fact.data["event-sub-topic"], null);
    }
  });

  await t.step("linkage, include, related and relationships agree: none", async () => {
    const read = await system.call(
      "GET",
      `/v1/events/${withSub.id}?include=event-topic,event-sub-topic`,
    );
    expectStatus(read, 200);
    assert.equal(read.body.data.relationships["event-topic"].data, null);
    assert.equal(read.body.data.relationships["event-sub-topic"].data, null);
    assert.deepEqual(read.body.included, []);
    for (const rel of ["event-topic", "event-sub-topic"]) {
      const related = await system.call("GET", `/v1/events/${withSub.id}/${rel}`);
      assert.equal(related.body.data, null, rel);
      const linkage = await system.call("GET", `/v1/events/${withSub.id}/relationships/${rel}`);
      assert.equal(linkage.body.data, null, rel);
    }
  });

  await t.step("the event saved back as read is accepted", async () => {
    const read = await system.call("GET", `/v1/events/${withSub.id}`);
    expectStatus(await saveBack(system, owner.token, read), 200);
  });
});

Deno.test("[catalog] DELETE /v1/event-sub-topics/{id} (soft) unlinks its events, each with a fact", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topic = await system.createTopic("Kept");
  const sub = await system.createSubTopic(topic, "Trashed");
  const event = await system.createEvent(owner.token, { relationships: inTopic(topic, sub) });
  const before = (await system.readFacts()).length;
  expectStatus(
    await system.call("DELETE", `/v1/event-sub-topics/${sub}`, { token: system.admin.token }),
    200,
  );
  assert.deepEqual(await linksOf(system, event.id), { topic, sub: null });
  const facts = await factsSince(system, before);
  assert.deepEqual(described(facts), [
    `catalog.event.updated ${event.id}`,
    `catalog.event-sub-topic.deleted ${sub}`,
  ]);
  assert.equal(facts[0].data["event-topic"], topic);
  assert.equal(facts[0].data["event-sub-topic"], null);
  const read = await system.call("GET", `/v1/events/${event.id}`, { token: owner.token });
  expectStatus(await saveBack(system, owner.token, read), 200);
});

Deno.test("[catalog] PATCH /v1/events/{id} accepts links sent back as stored, even dangling ones", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const [science, arts] = [await system.createTopic("Science"), await system.createTopic("Arts")];
  const physics = await system.createSubTopic(science, "Physics");
  const event = await system.createEvent(owner.token, { relationships: inTopic(science, physics) });
  // Data written before soft deletes unlinked: a link to a trashed topic, a pair that misfits.
  const trashed = await system.createTopic("Trashed long ago");
  await system.sql`update event_topics set deleted_at = now() where id = ${trashed}`;

  await t.step("a link to a trashed topic, sent back unchanged", async () => {
    await system.sql`update events set event_topic_id = ${trashed}, event_sub_topic_id = null
      where id = ${event.id}`;
    const reply = await patchRelationships(system, owner.token, event.id, inTopic(trashed));
    expectStatus(reply, 200);
    assert.deepEqual(await linksOf(system, event.id), { topic: trashed, sub: null });
  });

  await t.step("a sub-topic of another topic, sent back unchanged", async () => {
    await system.sql`update events set event_topic_id = ${arts}, event_sub_topic_id = ${physics}
      where id = ${event.id}`;
    const reply = await patchRelationships(system, owner.token, event.id, inTopic(arts, physics));
    expectStatus(reply, 200);
  });

  await t.step("a trashed topic that is not the stored one is still a 422", async () => {
    await system.sql`update events set event_topic_id = ${science}, event_sub_topic_id = null
      where id = ${event.id}`;
    const reply = await patchRelationships(system, owner.token, event.id, inTopic(trashed));
    expectStatus(reply, 422);
  });
});

Deno.test("[catalog] PATCH /v1/events/{id} with a new topic clears a sub-topic that no longer fits", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const [science, arts] = [await system.createTopic("Science"), await system.createTopic("Arts")];
  const physics = await system.createSubTopic(science, "Physics");
  const event = await system.createEvent(owner.token, { relationships: inTopic(science, physics) });
  const relink = () =>
    system.sql`update events set event_topic_id = ${science}, event_sub_topic_id = ${physics}
      where id = ${event.id}`;

  await t.step("only event-topic sent: the sub-topic is cleared, in the same fact", async () => {
    const before = (await system.readFacts()).length;
    const reply = await patchRelationships(system, owner.token, event.id, inTopic(arts));
    expectStatus(reply, 200);
    assert.equal(reply.body.data.relationships["event-sub-topic"].data, null);
    assert.deepEqual(await linksOf(system, event.id), { topic: arts, sub: null });
    const facts = await factsSince(system, before);
    assert.deepEqual(described(facts), [`catalog.event.updated ${event.id}`]);
    assert.equal(facts[0].data["event-topic"], arts);
    assert.equal(facts[0].data["event-sub-topic"], null);
  });

  await t.step("the sub-topic read sent back with a new topic: cleared too", async () => {
    await relink();
    const reply = await patchRelationships(system, owner.token, event.id, inTopic(arts, physics));
    expectStatus(reply, 200);
    assert.deepEqual(await linksOf(system, event.id), { topic: arts, sub: null });
  });

  await t.step("event-topic null: the sub-topic goes too", async () => {
    await relink();
    const reply = await patchRelationships(system, owner.token, event.id, {
      "event-topic": { data: null },
    });
    expectStatus(reply, 200);
    assert.deepEqual(await linksOf(system, event.id), { topic: null, sub: null });
  });

  await t.step("a sub-topic of the new topic stays", async () => {
    await relink();
    const reply = await patchRelationships(system, owner.token, event.id, inTopic(science));
    expectStatus(reply, 200);
    assert.deepEqual(await linksOf(system, event.id), { topic: science, sub: physics });
  });

  await t.step("a new sub-topic of another topic is still a 422", async () => {
    const paint = await system.createSubTopic(arts, "Painting");
    const reply = await patchRelationships(system, owner.token, event.id, inTopic(science, paint));
    expectStatus(reply, 422);
  });
});

Deno.test("[catalog] PATCH /v1/event-sub-topics/{id} moving it unlinks it from its events", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const [science, arts] = [await system.createTopic("Science"), await system.createTopic("Arts")];
  const design = await system.createSubTopic(science, "Design");
  const event = await system.createEvent(owner.token, {
    attributes: { state: "published" },
    relationships: inTopic(science, design),
  });
  const before = (await system.readFacts()).length;
  const body = {
    data: {
      type: "event-sub-topic",
      id: design,
      relationships: { "event-topic": { data: { type: "event-topic", id: arts } } },
    },
  };
  expectStatus(
    await system.call("PATCH", `/v1/event-sub-topics/${design}`, {
      token: system.admin.token,
      body,
    }),
    200,
  );
  assert.deepEqual(await linksOf(system, event.id), { topic: science, sub: null });
  const facts = await factsSince(system, before);
  assert.deepEqual(described(facts), [
    `catalog.event.updated ${event.id}`,
    `catalog.event-sub-topic.updated ${design}`,
  ]);
  assert.equal(facts[0].data["event-sub-topic"], null);
  const read = await system.call("GET", `/v1/events/${event.id}`);
  assert.equal(read.body.data.relationships["event-sub-topic"].data, null);
  expectStatus(await saveBack(system, owner.token, read), 200);
});

// An event's PATCH to another topic locked the event's row, then the new topic's and its stored
// sub-topic's (for share); the old topic's deletion locks the topic, its sub-topics, then its
// events. Met, they deadlocked: Postgres aborted one after a second, whose client got a 503 for
// a change nothing stood in the way of.
Deno.test("[catalog] an event's PATCH to another topic and its old topic's deletion, at once, both answer 200", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const [science, arts] = [await system.createTopic("Science"), await system.createTopic("Arts")];
  const physics = await system.createSubTopic(science, "Physics");
  const event = await system.createEvent(owner.token, { relationships: inTopic(science, physics) });
  // The test's own session holds the new topic's row: the PATCH waits for it, the deletion of the
  // old topic, started next, goes as far as the event's row.
  const held = await system.sql.reserve();
  let replies: CallResult[];
  try {
    await held`begin`;
    await held`select 1 from event_topics where id = ${arts} for update`;
    const patch = patchRelationships(system, owner.token, event.id, inTopic(arts));
    await untilWaitingForLocks(system.sql, { count: 1, what: "the PATCH" });
    let deleted = false;
    const deletion = system.call("DELETE", `/v1/event-topics/${science}`, {
      token: system.admin.token,
    }).finally(() => deleted = true);
    // The deletion waits for the event's row, or answers if it meets no lock of the PATCH.
    await untilWaitingForLocks(system.sql, {
      count: () => deleted ? 1 : 2,
      what: "the PATCH and the deletion",
    });
    await held`commit`;
    replies = await Promise.all([patch, deletion]);
  } finally {
    held.release();
  }
  expectStatus(replies[0], 200, "the PATCH");
  expectStatus(replies[1], 200, "the deletion");
  assert.deepEqual(await linksOf(system, event.id), { topic: arts, sub: null });
});

// A topic's deletion updated its events in the order it met them; a user's deletion locks the
// events they hold a role on in id order. One meeting the lower id later than the other (an
// event updated since sits after a newer one), they deadlocked: one answered 503.
Deno.test("[catalog] a topic's deletion and the deletion of a user with roles on its events, at once, both answer 200", async () => {
  await using system = await startTestSystem();
  const [owner, member] = [await system.signUp(), await system.signUp()];
  const topic = await system.createTopic("Shared");
  const [first, second] = [
    await system.createEvent(owner.token, { relationships: inTopic(topic) }),
    await system.createEvent(owner.token, { relationships: inTopic(topic) }),
  ];
  for (const event of [first, second]) {
    await system.grantRole(owner.token, {
      userId: member.id,
      eventId: event.id,
      role: "organizer",
    });
  }
  // Updated, the first event's row now comes after the second's.
  await system.sql`update events set description = 'moved' where id = ${first.id}`;
  // The test's own session holds the second event: the topic's deletion, started first, waits
  // there; the user's deletion, started next, waits too.
  const held = await system.sql.reserve();
  let replies: CallResult[];
  try {
    await held`begin`;
    await held`select 1 from events where id = ${second.id} for update`;
    const deletion = system.call("DELETE", `/v1/event-topics/${topic}`, {
      token: system.admin.token,
    });
    await untilWaitingForLocks(system.sql, { count: 1, what: "the topic's deletion" });
    const leaving = system.call("DELETE", `/v1/users/${member.id}`, { token: member.token });
    await untilWaitingForLocks(system.sql, { count: 2, what: "both deletions" });
    await held`commit`;
    replies = await Promise.all([deletion, leaving]);
  } finally {
    held.release();
  }
  expectStatus(replies[0], 200, "the topic's deletion");
  expectStatus(replies[1], 200, "the user's deletion");
  assert.deepEqual(await linksOf(system, first.id), { topic: null, sub: null });
  assert.deepEqual(await linksOf(system, second.id), { topic: null, sub: null });
});
