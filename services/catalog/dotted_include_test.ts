import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { MAX_INCLUDED_RELATIONSHIPS } from "@shared/query.ts";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";
import { querySpecs } from "./resources.ts";

type Identifier = { type: string; id: string };
type Resource = Identifier & {
  attributes?: Record<string, unknown>;
  relationships?: Record<string, { data?: Identifier | Identifier[] | null }>;
};
type Document = { data: Resource | Resource[]; included?: Resource[] };

const keyOf = (r: Identifier) => `${r.type}:${r.id}`;
const keysOf = (included: Resource[] = []) => included.map(keyOf).sort();

/**
 * JSON:API's compound document rules: no resource twice (the primary data counts, unless it is
 * a relationship route's linkage), and every included resource reached by linkage from the
 * primary data.
 */
function assertFullLinkage(document: Document, options: { linkage?: boolean } = {}): void {
  const primary = [document.data].flat();
  const included = document.included ?? [];
  const all = options.linkage ? included : [...primary, ...included];
  assert.equal(new Set(all.map(keyOf)).size, all.length, "a resource shown twice");
  const byKey = new Map(all.map((r) => [keyOf(r), r]));
  const reached = new Set(primary.map(keyOf));
  const queue = options.linkage ? primary.flatMap((r) => byKey.get(keyOf(r)) ?? []) : [...primary];
  while (queue.length) {
    for (const relationship of Object.values(queue.shift()!.relationships ?? {})) {
      for (const linked of [relationship.data ?? []].flat()) {
        const key = keyOf(linked);
        if (reached.has(key) || !byKey.has(key)) continue;
        reached.add(key);
        queue.push(byKey.get(key)!);
      }
    }
  }
  for (const resource of included) {
    assert.ok(reached.has(keyOf(resource)), `${keyOf(resource)} is included but not linked`);
  }
}

Deno.test("[catalog] include paths go through relationships, as the original's did", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topic = await system.createTopic("Dotted");
  const subTopic = await system.createSubTopic(topic, "Dotted sub");
  const relationships = {
    "event-topic": { data: { type: "event-topic", id: topic } },
    "event-sub-topic": { data: { type: "event-sub-topic", id: subTopic } },
  };
  const event = await system.createEvent(owner.token, {
    attributes: { state: "published" },
    relationships,
  });
  const draft = await system.createEvent(owner.token, { relationships });
  const ticket = await system.createTicket(owner.token, event.id, { name: "Seat" });
  const hiddenTicket = await system.createTicket(owner.token, draft.id, { name: "Hidden" });

  await t.step("from an event: its tickets' event is the event itself, not repeated", async () => {
    const reply = await system.call(
      "GET",
      `/v1/events/${event.id}?include=tickets.event,event-sub-topic.event-topic`,
    );
    expectStatus(reply, 200);
    assertFullLinkage(reply.body);
    assert.deepEqual(
      keysOf(reply.body.included),
      [`event-sub-topic:${subTopic}`, `event-topic:${topic}`, `ticket:${ticket}`],
    );
    const sub = reply.body.included.find((r: Resource) => r.type === "event-sub-topic");
    assert.deepEqual(sub.relationships["event-topic"].data, { type: "event-topic", id: topic });
  });

  await t.step("one resource reached two ways is included once, with both linkages", async () => {
    const reply = await system.call(
      "GET",
      `/v1/event-topics/${topic}?include=events.tickets,event-sub-topics.events`,
    );
    expectStatus(reply, 200);
    assertFullLinkage(reply.body);
    assert.deepEqual(
      keysOf(reply.body.included),
      [`event-sub-topic:${subTopic}`, `event:${event.id}`, `ticket:${ticket}`],
      "anonymous: the draft and its ticket stay hidden",
    );
    const shown = reply.body.included.find((r: Resource) => r.type === "event");
    assert.deepEqual(shown.relationships.tickets.data, [{ type: "ticket", id: ticket }]);
    const sub = reply.body.included.find((r: Resource) => r.type === "event-sub-topic");
    assert.deepEqual(sub.relationships.events.data, [{ type: "event", id: event.id }]);
  });

  await t.step("its owner sees the draft through the same paths", async () => {
    const reply = await system.call(
      "GET",
      `/v1/event-topics/${topic}?include=events.tickets,event-sub-topics.events`,
      { token: owner.token },
    );
    expectStatus(reply, 200);
    assertFullLinkage(reply.body);
    assert.ok(keysOf(reply.body.included).includes(`ticket:${hiddenTicket}`));
    assert.ok(keysOf(reply.body.included).includes(`event:${draft.id}`));
  });

  await t.step("who sees what holds at every level", async () => {
    const path = `/v1/events/${event.id}/tickets?include=event.users-events-roles.user,event.owner`;
    const anonymous = await system.call("GET", path);
    expectStatus(anonymous, 200);
    assertFullLinkage(anonymous.body);
    assert.deepEqual(
      keysOf(anonymous.body.included),
      [`event:${event.id}`, `user:${owner.id}`],
      "no roles for a stranger; the owner by name only",
    );
    const user = anonymous.body.included.find((r: Resource) => r.type === "user");
    assert.ok(!("email" in user.attributes), "no email for a stranger");
    const own = await system.call("GET", path, { token: owner.token });
    expectStatus(own, 200);
    assertFullLinkage(own.body);
    assert.equal(
      own.body.included.filter((r: Resource) => r.type === "users-events-role").length,
      1,
    );
    const self = own.body.included.find((r: Resource) => r.type === "user");
    assert.ok("email" in self.attributes, "the owner sees their own email");
  });

  await t.step("fieldsets apply to every level; a list takes dotted paths too", async () => {
    const reply = await system.call(
      "GET",
      `/v1/events?include=event-topic.event-sub-topics&fields[event-sub-topic]=name`,
    );
    expectStatus(reply, 200);
    assertFullLinkage(reply.body);
    const sub = reply.body.included.find((r: Resource) => r.type === "event-sub-topic");
    assert.deepEqual(Object.keys(sub.attributes), ["name"]);
  });

  await t.step("an include may go through 40 relationships at most", async () => {
    // Every name of an event the catalog serves, and dotted paths through them up to the limit.
    const spec = querySpecs.event.includes!;
    const elsewhere = ["discount-codes", "discount-code", "stripe-authorization"];
    const names = spec.filter((path) => !path.includes(".") && !elsewhere.includes(path));
    const dotted = spec.filter((path) => path.split(".").length === 2);
    const fits = [...names, ...dotted.slice(0, MAX_INCLUDED_RELATIONSHIPS - names.length)];
    expectStatus(await system.call("GET", `/v1/events/${event.id}?include=${fits}`), 200);
    const tooMany = [...fits, dotted[MAX_INCLUDED_RELATIONSHIPS - names.length]];
    expectError(
      await system.call("GET", `/v1/events/${event.id}?include=${tooMany}`),
      400,
      { parameter: "include" },
    );
  });

  await t.step("deeper than three, or through another service, is a 400", async () => {
    for (
      const include of [
        "tickets.event.owner.events",
        "tickets.discount-codes",
        "event-topic.nope",
        "tickets..event",
      ]
    ) {
      expectError(
        await system.call("GET", `/v1/events/${event.id}?include=${include}`),
        400,
        { parameter: "include" },
        include,
      );
    }
  });
});

Deno.test("[catalog] a cached page with a dotted include is dropped by what its deeper levels show", async () => {
  await using system = await startTestSystem({ env: { CACHE_SETTLE_MS: "100" } });
  const owner = await system.signUp();
  const topic = await system.createTopic("Cached");
  const event = await system.createEvent(owner.token, {
    attributes: { state: "published" },
    relationships: { "event-topic": { data: { type: "event-topic", id: topic } } },
  });
  await system.readFacts();
  await new Promise((resolve) => setTimeout(resolve, 150));
  const path = `/v1/event-topics/${topic}?include=events.tickets`;
  const tickets = async () =>
    ((await system.call("GET", path)).body.included ?? [])
      .filter((r: Resource) => r.type === "ticket").length;
  assert.equal(await tickets(), 0);
  const hit = await system.call("GET", path);
  assert.equal(hit.headers.get("X-Cache"), "HIT", "else this test proves nothing");
  await system.createTicket(owner.token, event.id);
  await eventually(async () => await tickets() === 1, 2_000, "the new ticket on the topic's page");
});

// Found by a review: on a relationship route the parent is not the primary data (its linkage
// is), yet a path leading back to it left it out: `tickets.event` named an event the document
// did not include, and `tickets.event.users-events-roles` included roles nothing linked to.
Deno.test("[catalog] a relationship route includes its parent where a dotted path reaches it", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topic = await system.createTopic("Back");
  const event = await system.createEvent(owner.token, {
    attributes: { state: "published" },
    relationships: { "event-topic": { data: { type: "event-topic", id: topic } } },
  });
  const ticket = await system.createTicket(owner.token, event.id);
  const [grant] = await system.sql`select id from users_events_roles where event_id = ${event.id}`;
  const cases: [string, string[], string?][] = [
    [
      `/v1/events/${event.id}/relationships/tickets?include=tickets.event`,
      [`event:${event.id}`, `ticket:${ticket}`],
    ],
    [
      `/v1/events/${event.id}/relationships/tickets?include=tickets.event.users-events-roles`,
      [`event:${event.id}`, `ticket:${ticket}`, `users-events-role:${grant.id}`],
      owner.token,
    ],
    [
      `/v1/events/${event.id}/relationships/event-topic?include=event-topic.events`,
      [`event:${event.id}`, `event-topic:${topic}`],
    ],
    [
      `/v1/users/${owner.id}/relationships/events?include=events.owner`,
      [`event:${event.id}`, `user:${owner.id}`],
      owner.token,
    ],
  ];
  for (const [path, expected, token] of cases) {
    await t.step(path, async () => {
      const reply = await system.call("GET", path, { token });
      expectStatus(reply, 200);
      assertFullLinkage(reply.body, { linkage: true });
      assert.deepEqual(keysOf(reply.body.included), expected.sort());
    });
  }
  await t.step("a parent no path reaches stays out", async () => {
    const path = `/v1/events/${event.id}/relationships/tickets?include=tickets`;
    const reply = await system.call("GET", path);
    expectStatus(reply, 200);
    assert.deepEqual(keysOf(reply.body.included), [`ticket:${ticket}`]);
  });
});
