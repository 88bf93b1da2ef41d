import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";
import { holdTableLock } from "@testing/table_lock.ts";

type Resource = { type: string; id: string; attributes?: Record<string, unknown> };
const includedOf = (body: { included?: Resource[] }) =>
  (body.included ?? []).map((r) => `${r.type}:${r.id}`).sort();

function eventBody(extra: Record<string, unknown> = {}) {
  const starts = new Date(Date.now() + 24 * 3600_000);
  return {
    data: {
      type: "event",
      attributes: {
        name: "Written with includes",
        "starts-at": starts.toISOString(),
        "ends-at": new Date(starts.getTime() + 3600_000).toISOString(),
      },
      ...extra,
    },
  };
}

// JSON:API asks an endpoint either to honour `include` and `fields` on any answer with primary
// data, POST and PATCH ones too, or to refuse them (400); the original honoured them there.
Deno.test("[catalog] POST and PATCH answer with what include and fields ask for", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topicId = await system.createTopic();
  const subTopicId = await system.createSubTopic(topicId);
  const topicLink = { "event-topic": { data: { type: "event-topic", id: topicId } } };
  const eventCount = async () =>
    (await system.call("GET", "/v1/events?get_trashed=true&page[size]=1", {
      token: system.admin.token,
    })).body.meta.count;
  let eventId = "";

  await t.step("POST /v1/events?include=event-topic,owner: 201 with both included", async () => {
    const reply = await system.call("POST", "/v1/events?include=event-topic,owner", {
      token: owner.token,
      body: eventBody({ relationships: topicLink }),
    });
    expectStatus(reply, 201);
    eventId = reply.body.data.id;
    assert.equal(reply.headers.get("Location"), `/v1/events/${eventId}`);
    assert.deepEqual(includedOf(reply.body), [`event-topic:${topicId}`, `user:${owner.id}`]);
    const user = reply.body.included.find((r: Resource) => r.type === "user");
    assert.equal(user.attributes.email, owner.email, "the owner sees their own account in full");
  });

  await t.step("PATCH with include=tickets and fields[event]: as its GET shows it", async () => {
    const ticketId = await system.createTicket(owner.token, eventId);
    const path = `/v1/events/${eventId}?include=tickets&fields[event]=name,tickets`;
    const body = { data: { type: "event", id: eventId, attributes: { name: "Renamed" } } };
    const reply = await system.call("PATCH", path, { token: owner.token, body });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.attributes, { name: "Renamed" });
    assert.deepEqual(reply.body.data.relationships.tickets.data, [{
      type: "ticket",
      id: ticketId,
    }]);
    assert.deepEqual(includedOf(reply.body), [`ticket:${ticketId}`]);
    const read = await system.call("GET", path, { token: owner.token });
    assert.deepEqual(reply.body, read.body, "the same document a read gives");
  });

  await t.step("with an Idempotency-Key the answer includes the write's own rows", async () => {
    // The change is held open until the answer is recorded: includes read inside it.
    const request = {
      token: owner.token,
      body: eventBody(),
      headers: { "Idempotency-Key": `include-${crypto.randomUUID()}` },
    };
    const reply = await system.call("POST", "/v1/events?include=users-events-roles", request);
    expectStatus(reply, 201);
    const grants = reply.body.data.relationships["users-events-roles"].data;
    assert.equal(grants.length, 1, "the owner's grant, made by this POST");
    assert.deepEqual(includedOf(reply.body), [`users-events-role:${grants[0].id}`]);
    const replay = await system.call("POST", "/v1/events?include=users-events-roles", request);
    expectStatus(replay, 201);
    assert.deepEqual(replay.body, reply.body, "the replay answers the same");
  });

  await t.step(
    "another service down: the write's own answer, not a 503 for a done write",
    async () => {
      // This system runs no discounts service, which owns an event's discount codes.
      const created = await system.call("POST", "/v1/events?include=discount-codes", {
        token: owner.token,
        body: eventBody(),
      });
      expectStatus(created, 201);
      const id = created.body.data.id;
      assert.equal(created.headers.get("Location"), `/v1/events/${id}`);
      assert.match(created.body.meta["include-unavailable"], /^The change is done/);
      const body = { data: { type: "event", id, attributes: { name: "Still answered" } } };
      const patched = await system.call("PATCH", `/v1/events/${id}?include=discount-codes`, {
        token: owner.token,
        body,
      });
      expectStatus(patched, 200);
      assert.equal(patched.body.data.attributes.name, "Still answered");
    },
  );

  await t.step("a bad include is a 400 before anything is written", async () => {
    const before = await eventCount();
    const created = await system.call("POST", "/v1/events?include=nope", {
      token: owner.token,
      body: eventBody(),
    });
    expectError(created, 400, { parameter: "include" });
    assert.equal(await eventCount(), before, "no event was created");
    const body = { data: { type: "event", id: eventId, attributes: { name: "Not saved" } } };
    const patched = await system.call("PATCH", `/v1/events/${eventId}?fields[event]=nope`, {
      token: owner.token,
      body,
    });
    expectError(patched, 400, { parameter: "fields[event]" });
    const read = await system.call("GET", `/v1/events/${eventId}`, { token: owner.token });
    assert.equal(read.body.data.attributes.name, "Renamed", "the PATCH changed nothing");
  });

  await t.step("tickets, sub-topics, grants and sign-ups include too", async () => {
    const ticket = await system.call("POST", "/v1/tickets?include=event", {
      token: owner.token,
      body: {
        data: {
          type: "ticket",
          attributes: { name: "Early", type: "free", price: 0 },
          relationships: { event: { data: { type: "event", id: eventId } } },
        },
      },
    });
    expectStatus(ticket, 201);
    assert.deepEqual(includedOf(ticket.body), [`event:${eventId}`]);

    const sub = await system.call(
      "PATCH",
      `/v1/event-sub-topics/${subTopicId}?include=event-topic`,
      {
        token: system.admin.token,
        body: { data: { type: "event-sub-topic", id: subTopicId, attributes: { name: "Sub" } } },
      },
    );
    expectStatus(sub, 200);
    assert.deepEqual(includedOf(sub.body), [`event-topic:${topicId}`]);

    const helper = await system.signUp();
    const grant = await system.call("POST", "/v1/users-events-roles?include=user,role", {
      token: owner.token,
      body: {
        data: {
          type: "users-events-role",
          relationships: {
            user: { data: { type: "user", id: helper.id } },
            event: { data: { type: "event", id: eventId } },
            role: { data: { type: "role", id: "coorganizer" } },
          },
        },
      },
    });
    expectStatus(grant, 201);
    assert.deepEqual(includedOf(grant.body), [`role:coorganizer`, `user:${helper.id}`]);
    const shown = grant.body.included.find((r: Resource) => r.type === "user");
    assert.equal(shown.attributes.email, undefined, "another user's email stays private");

    const signUp = await system.call("POST", "/v1/users?include=events", {
      body: {
        data: {
          type: "user",
          attributes: { email: `new-${crypto.randomUUID()}@example.test`, password: "a password" },
        },
      },
    });
    expectStatus(signUp, 201);
    assert.deepEqual(signUp.body.data.relationships.events.data, []);
    assert.deepEqual(includedOf(signUp.body), []);
  });
});

// A write without an Idempotency-Key has committed (and announced its facts) before its answer
// reads what `include` asks for. Held by a lock until the deadline, that read made the gateway
// answer 504 for a change that was made: a client retrying a POST made it twice (a review,
// 2026-12-05). Now the answer leaves before the deadline, without the includes, and says why.
Deno.test("[catalog] a done write whose includes cannot be read in time is answered as done", async (t) => {
  await using system = await startTestSystem({ env: { REQUEST_TIMEOUT_MS: "1500" } });
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token);
  await system.createTicket(owner.token, event.id);
  const storedName = async () =>
    (await system.sql`select name from events where id = ${event.id}`)[0].name;
  const eventCount = async () =>
    (await system.sql`select count(*)::int as n from events where name = 'Locked out'`)[0].n;
  const unavailable = (body: { meta?: Record<string, string> }) =>
    body.meta?.["include-unavailable"] ?? "";
  // Reads of tickets wait: what `include=tickets` reads, and nothing the writes themselves touch.
  await using lock = await holdTableLock(system.databaseUrl, "catalog.tickets", { reads: "wait" });

  await t.step("PATCH ?include=tickets: 200, renamed, without the tickets", async () => {
    const began = Date.now();
    const reply = await system.call("PATCH", `/v1/events/${event.id}?include=tickets`, {
      token: owner.token,
      body: { data: { type: "event", id: event.id, attributes: { name: "Renamed" } } },
    });
    expectStatus(reply, 200);
    assert.ok(Date.now() - began < 1500, "answered before the gateway's timeout");
    assert.equal(reply.body.data.attributes.name, "Renamed");
    assert.equal(reply.body.included, undefined);
    assert.match(unavailable(reply.body), /^The change is done; what it included is not/);
    assert.equal(await storedName(), "Renamed", "what the client was told is what is stored");
  });

  await t.step("POST ?include=tickets: 201 once, and the event is there once", async () => {
    const reply = await system.call("POST", "/v1/events?include=tickets", {
      token: owner.token,
      body: eventBody({ attributes: { ...eventBody().data.attributes, name: "Locked out" } }),
    });
    expectStatus(reply, 201);
    assert.match(unavailable(reply.body), /^The change is done/);
    assert.equal(await eventCount(), 1);
  });

  await t.step("with an Idempotency-Key: what the client is told is what is stored", async () => {
    // A keyed write reads its includes inside its own transaction, which the deadline bounds:
    // held there past it, it is rolled back whole and answered 504.
    const reply = await system.call("PATCH", `/v1/events/${event.id}?include=tickets`, {
      token: owner.token,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { data: { type: "event", id: event.id, attributes: { name: "Keyed" } } },
    });
    await lock.release();
    expectStatus(reply, 504);
    await new Promise((resolve) => setTimeout(resolve, 500)); // a late COMMIT would land by now
    assert.equal(await storedName(), "Renamed");
  });

  await t.step("a read cut short after its first level: no linkage from it either", async () => {
    // Tickets load, then the grants' roles wait: the answer must not name the tickets it loaded
    // in relationships while `included` is gone.
    await using roles = await holdTableLock(system.databaseUrl, "catalog.roles", { reads: "wait" });
    const path = `/v1/events/${event.id}?include=tickets,users-events-roles.role`;
    const reply = await system.call("PATCH", path, {
      token: owner.token,
      body: { data: { type: "event", id: event.id, attributes: { name: "Half read" } } },
    });
    await roles.release();
    expectStatus(reply, 200);
    assert.match(unavailable(reply.body), /^The change is done/);
    assert.equal(reply.body.included, undefined);
    assert.equal(reply.body.data.relationships.tickets.data, undefined);
    assert.equal(reply.body.data.relationships["users-events-roles"].data, undefined);
    assert.equal(await storedName(), "Half read");
  });

  await t.step("the lock gone, the same PATCH includes the tickets again", async () => {
    const reply = await system.call("PATCH", `/v1/events/${event.id}?include=tickets`, {
      token: owner.token,
      body: { data: { type: "event", id: event.id, attributes: { name: "Free again" } } },
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.included?.length, 1);
    assert.equal(unavailable(reply.body), "");
  });
});
