import assert from "node:assert/strict";
import { resolveEndpoint } from "@shared/subjects.ts";
import { actorOf, expectStatus, startTestSystem, type TestSystem } from "@testing/system.ts";

const TRASHED = "get_trashed=true";

type Identifier = { type: string; id: string };
type Body = {
  data: Identifier & { relationships?: Record<string, { data?: Identifier | Identifier[] }> };
  included?: Identifier[];
};

/** The ids of `type` in a reply's `included`, sorted. */
function includedIds(body: { included?: Identifier[] }, type: string): string[] {
  return (body.included ?? []).filter((r) => r.type === type).map((r) => r.id).sort();
}

/** The ids a relationship's linkage names, sorted. */
function linkedIds(body: Body, name: string): string[] {
  const data = body.data.relationships?.[name]?.data;
  return [data ?? []].flat().map((r) => r.id).sort();
}

/** `GET path` as `token`'s user: the body, once it is a 200. */
async function read(system: TestSystem, path: string, token?: string): Promise<Body> {
  const reply = await system.call("GET", path, { token });
  expectStatus(reply, 200, path);
  return reply.body;
}

/** The ids a list route answers, sorted. */
async function listed(system: TestSystem, path: string, token?: string): Promise<string[]> {
  const body = await read(system, path, token) as unknown as { data: Identifier[] };
  return body.data.map((r) => r.id).sort();
}

async function remove(system: TestSystem, path: string, token: string) {
  expectStatus(await system.call("DELETE", path, { token }), 200, `DELETE ${path}`);
}

/**
 * A topic with a sub-topic, and a published event under both with a live and a trashed ticket; a
 * second event of the same owner under the topic, deleted with a ticket of its own (the deletion
 * of an event trashes it alone: its tickets stay live, hidden with it).
 */
async function trash(system: TestSystem) {
  const topic = await system.createTopic("Trash Topic");
  const subTopic = await system.createSubTopic(topic, "Trash Sub");
  const relationships = {
    "event-topic": { data: { type: "event-topic", id: topic } },
    "event-sub-topic": { data: { type: "event-sub-topic", id: subTopic } },
  };
  const cast = await system.eventWithCast({ attributes: { state: "published" }, relationships });
  const owner = cast.owner.token;
  const live = cast.event.id;
  const liveTicket = await system.createTicket(owner, live);
  const trashedTicket = await system.createTicket(owner, live);
  await remove(system, `/v1/tickets/${trashedTicket}`, owner);
  const deleted = (await system.createEvent(owner, {
    attributes: { state: "published" },
    relationships,
  })).id;
  const ticketOfDeleted = await system.createTicket(owner, deleted);
  await remove(system, `/v1/events/${deleted}`, owner);
  return { cast, topic, subTopic, live, liveTicket, trashedTicket, deleted, ticketOfDeleted };
}

Deno.test("[catalog] the catalog's own includes follow an admin's get_trashed, as its related routes do", async (t) => {
  await using system = await startTestSystem();
  const f = await trash(system);
  const admin = system.admin.token;
  const owner = f.cast.owner.token;

  await t.step("a ticket of a deleted event includes its event", async () => {
    const body = await read(
      system,
      `/v1/tickets/${f.ticketOfDeleted}?${TRASHED}&include=event`,
      admin,
    );
    assert.deepEqual(linkedIds(body, "event"), [f.deleted]);
    assert.deepEqual(includedIds(body, "event"), [f.deleted]);
    // As the related route answers it.
    const related = await read(system, `/v1/tickets/${f.ticketOfDeleted}/event?${TRASHED}`, admin);
    assert.equal(related.data.id, f.deleted);
  });

  await t.step("an event includes its trashed tickets, as /tickets lists them", async () => {
    for (const event of [f.live, f.deleted]) {
      const path = `/v1/events/${event}`;
      const expected = await listed(system, `${path}/tickets?${TRASHED}`, admin);
      const body = await read(system, `${path}?${TRASHED}&include=tickets`, admin);
      assert.deepEqual(linkedIds(body, "tickets"), expected, path);
      assert.deepEqual(includedIds(body, "ticket"), expected, path);
    }
    const body = await read(system, `/v1/events/${f.live}?${TRASHED}&include=tickets`, admin);
    assert.deepEqual(includedIds(body, "ticket"), [f.liveTicket, f.trashedTicket].sort());
  });

  await t.step("a topic and a sub-topic include their trashed events", async () => {
    for (const parent of [`/v1/event-topics/${f.topic}`, `/v1/event-sub-topics/${f.subTopic}`]) {
      const expected = await listed(system, `${parent}/events?${TRASHED}`, admin);
      assert.deepEqual(expected, [f.live, f.deleted].sort(), parent);
      const body = await read(system, `${parent}?${TRASHED}&include=events`, admin);
      assert.deepEqual(includedIds(body, "event"), expected, parent);
    }
  });

  await t.step("a user includes their trashed events and the roles on them", async () => {
    const path = `/v1/users/${f.cast.owner.id}`;
    for (const [name, type] of [["events", "event"], ["users-events-roles", "users-events-role"]]) {
      const expected = await listed(system, `${path}/${name}?${TRASHED}`, admin);
      const body = await read(system, `${path}?${TRASHED}&include=${name}`, admin);
      assert.deepEqual(includedIds(body, type), expected, name);
      assert.equal(expected.length, 2, name);
    }
  });

  await t.step("a list's includes follow it too", async () => {
    const body = await read(system, `/v1/tickets?${TRASHED}&include=event&page[size]=0`, admin);
    assert.deepEqual(includedIds(body, "event"), [f.live, f.deleted].sort());
  });

  await t.step("a relationship route's include shows what its linkage shows", async () => {
    const toOne = `/v1/tickets/${f.ticketOfDeleted}/relationships/event?${TRASHED}&include=event`;
    const one = await read(system, toOne, admin);
    assert.equal(one.data.id, f.deleted);
    assert.deepEqual(includedIds(one, "event"), [f.deleted]);
    // An event's ticket linkage stays live-only (README), and so does what it includes.
    const toMany = `/v1/events/${f.live}/relationships/tickets?${TRASHED}&include=tickets`;
    const many = await read(system, toMany, admin) as unknown as {
      data: Identifier[];
      included?: Identifier[];
    };
    assert.deepEqual(many.data.map((r) => r.id), [f.liveTicket]);
    assert.deepEqual(includedIds(many, "ticket"), [f.liveTicket]);
  });

  await t.step("without get_trashed, or for anyone but an admin, includes stay live", async () => {
    const path = `/v1/events/${f.live}?include=tickets,event-topic`;
    for (
      const [query, token] of [["", admin], [`&${TRASHED}`, owner], [`&${TRASHED}`, undefined]]
    ) {
      const body = await read(system, `${path}${query}`, token);
      assert.deepEqual(includedIds(body, "ticket"), [f.liveTicket], `${query} ${token}`);
      assert.deepEqual(includedIds(body, "event-topic"), [f.topic]);
    }
    for (
      const [query, token] of [["", admin], [`&${TRASHED}`, owner], [`&${TRASHED}`, undefined]]
    ) {
      const body = await read(system, `/v1/event-topics/${f.topic}?include=events${query}`, token);
      assert.deepEqual(includedIds(body, "event"), [f.live], `${query} ${token}`);
    }
    const mine = await read(
      system,
      `/v1/users/${f.cast.owner.id}?${TRASHED}&include=events`,
      owner,
    );
    assert.deepEqual(includedIds(mine, "event"), [f.live]);
  });
});

Deno.test("[catalog] a trashed topic includes the sub-topics trashed with it, and they include it", async () => {
  await using system = await startTestSystem();
  const admin = system.admin.token;
  const topic = await system.createTopic("Gone Topic");
  const before = await system.createSubTopic(topic, "Gone Before");
  const along = await system.createSubTopic(topic, "Gone Along");
  await remove(system, `/v1/event-sub-topics/${before}`, admin);
  await remove(system, `/v1/event-topics/${topic}`, admin);
  const path = `/v1/event-topics/${topic}`;
  const expected = await listed(system, `${path}/event-sub-topics?${TRASHED}`, admin);
  assert.deepEqual(expected, [before, along].sort());
  const body = await read(system, `${path}?${TRASHED}&include=event-sub-topics`, admin);
  assert.deepEqual(linkedIds(body, "event-sub-topics"), expected);
  assert.deepEqual(includedIds(body, "event-sub-topic"), expected);
  const sub = await read(
    system,
    `/v1/event-sub-topics/${along}?${TRASHED}&include=event-topic`,
    admin,
  );
  assert.deepEqual(includedIds(sub, "event-topic"), [topic]);
});

Deno.test("[catalog] catalog.resolve's include reads the trash when it is granted", async (t) => {
  await using system = await startTestSystem();
  const f = await trash(system);
  const [{ token_version: version }] = await system.sql`select token_version from users
    where id = ${system.admin.id}`;
  const admin = { id: system.admin.id, tokenVersion: Number(version) };
  const resolve = (type: string, ids: string[], include: string[], trashed?: boolean) =>
    system.bus.request(resolveEndpoint("catalog"), {
      actor: admin,
      type,
      ids,
      include,
      ...(trashed === undefined ? {} : { trashed }),
    });

  await t.step("granted: trashed resources and what they include", async () => {
    const events = await resolve("event", [f.deleted, f.live], ["tickets"], true);
    assert.deepEqual(events.data.map((r) => r.id).sort(), [f.live, f.deleted].sort());
    assert.deepEqual(
      includedIds(events, "ticket"),
      [f.liveTicket, f.trashedTicket, f.ticketOfDeleted].sort(),
    );
    const ticket = await resolve("ticket", [f.ticketOfDeleted], ["event"], true);
    assert.deepEqual(includedIds(ticket, "event"), [f.deleted]);
  });

  await t.step("not asked, or not an admin: live ones only", async () => {
    const events = await resolve("event", [f.deleted, f.live], ["tickets"]);
    assert.deepEqual(events.data.map((r) => r.id), [f.live]);
    assert.deepEqual(includedIds(events, "ticket"), [f.liveTicket]);
    const asOwner = await system.bus.request(resolveEndpoint("catalog"), {
      actor: actorOf(f.cast.owner),
      type: "event",
      ids: [f.deleted, f.live],
      include: ["tickets"],
      trashed: true,
    });
    assert.deepEqual(asOwner.data.map((r) => r.id), [f.live]);
    assert.deepEqual(includedIds(asOwner, "ticket"), [f.liveTicket]);
  });
});

Deno.test("[catalog] a deleted owner, and a role's deleted user or event, answer an admin who asks for the trash", async (t) => {
  await using system = await startTestSystem();
  const admin = system.admin.token;
  const gone = await system.eventWithCast({ attributes: { state: "published" } });
  const live = await system.eventWithCast({ attributes: { state: "published" } });
  const event = gone.event.id;
  // A trashed event whose only owner then deleted their account keeps them as its owner.
  await remove(system, `/v1/events/${event}`, gone.owner.token);
  await remove(system, `/v1/users/${gone.owner.id}`, gone.owner.token);
  // A deleted co-organizer's role on a live event stays, as their history.
  await remove(system, `/v1/users/${live.coorganizer.id}`, live.coorganizer.token);
  const ownerGrant = `/v1/users-events-roles/${gone.grants.owner}`;
  const coorganizerGrant = `/v1/users-events-roles/${live.grants.coorganizer}`;
  const dataOf = async (path: string, token: string) =>
    (await read(system, path, token) as unknown as { data: Identifier | null }).data?.id ?? null;

  await t.step("the related and relationship routes", async () => {
    for (const rel of ["owner", "relationships/owner"]) {
      const path = `/v1/events/${event}/${rel}?${TRASHED}`;
      assert.equal(await dataOf(path, admin), gone.owner.id, path);
    }
    for (const rel of ["user", "relationships/user"]) {
      const path = `${ownerGrant}/${rel}?${TRASHED}`;
      assert.equal(await dataOf(path, admin), gone.owner.id, path);
    }
    for (const rel of ["event", "relationships/event"]) {
      const path = `${ownerGrant}/${rel}?${TRASHED}`;
      assert.equal(await dataOf(path, admin), event, path);
    }
    assert.equal(await dataOf(`${coorganizerGrant}/user?${TRASHED}`, admin), live.coorganizer.id);
  });

  await t.step("what they include", async () => {
    const owner = await read(system, `/v1/events/${event}?${TRASHED}&include=owner`, admin);
    assert.deepEqual(includedIds(owner, "user"), [gone.owner.id]);
    const grant = await read(system, `${ownerGrant}?${TRASHED}&include=user,event`, admin);
    assert.deepEqual(includedIds(grant, "user"), [gone.owner.id]);
    assert.deepEqual(includedIds(grant, "event"), [event]);
    const linkage = `/v1/events/${event}/relationships/owner?${TRASHED}&include=owner`;
    assert.deepEqual(includedIds(await read(system, linkage, admin), "user"), [gone.owner.id]);
  });

  await t.step("without get_trashed, or for anyone but an admin, live ones only", async () => {
    const organizer = live.organizer.token;
    assert.equal(await dataOf(`${coorganizerGrant}/user`, admin), null);
    assert.equal(await dataOf(`${coorganizerGrant}/user?${TRASHED}`, organizer), null);
    const body = await read(system, `${coorganizerGrant}?${TRASHED}&include=user`, organizer);
    assert.deepEqual(includedIds(body, "user"), []);
  });
});
