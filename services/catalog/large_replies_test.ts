import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

// A description of 20,000 control characters is allowed and takes 120 kB in JSON (`\u0001`):
// ten of them make an answer larger than NATS carries by default (1 MiB).
const LONG = "\u0001".repeat(20_000);

// Found by a review: such an answer was never sent (NATS refused it), the requester waited for
// its 504, and the unhandled rejection stopped the catalog and with it the whole system; a PATCH
// answered so had committed its change after all.
Deno.test("[catalog] an answer larger than the bus carries is refused clearly, and nothing stops", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const attributes = { state: "published", description: LONG };
  const events = [];
  for (let i = 0; i < 10; i++) events.push(await system.createEvent(owner.token, { attributes }));
  const eventId = events[0].id;

  await t.step("a list that does not fit: 400 saying how to ask for less", async () => {
    const reply = await system.call("GET", "/v1/events?page[size]=0");
    expectError(reply, 400);
    assert.match(reply.body.errors[0].detail, /more than the 1\.00 MiB the bus carries/);
    assert.match(reply.body.errors[0].detail, /page\[size\]/);
    // The error kept the success's cache tags once, and the gateway served it from its cache.
    const again = await system.call("GET", "/v1/events?page[size]=0");
    expectError(again, 400);
    assert.notEqual(again.headers.get("X-Cache"), "HIT");
    assert.match(again.headers.get("Cache-Control") ?? "", /no-store/);
  });

  await t.step("the catalog still answers, a smaller page too", async () => {
    expectStatus(await system.call("GET", "/v1/events?page[size]=2"), 200);
    const health = await system.call("GET", "/health");
    assert.equal(health.body.services.catalog.instances, 1);
  });

  await t.step(
    "a done write that does not fit is answered as done, without its includes",
    async () => {
      for (let i = 0; i < 9; i++) {
        await system.createTicket(owner.token, eventId, { description: LONG });
      }
      const body = { data: { type: "event", id: eventId, attributes: { name: "Renamed" } } };
      const reply = await system.call("PATCH", `/v1/events/${eventId}?include=tickets`, {
        token: owner.token,
        body,
      });
      expectStatus(reply, 200);
      assert.equal(reply.body.data.attributes.name, "Renamed");
      assert.equal(reply.body.included, undefined);
      assert.match(reply.body.meta["include-unavailable"], /The change is done/);
      const read = await system.call("GET", `/v1/events/${eventId}`);
      assert.equal(read.body.data.attributes.name, "Renamed");
    },
  );
});

// A review (2026-12-04) suspected it, this showed it: a write's Cache-Tags name every resource it
// changed, about 30 bytes each, so a topic whose deletion unlinked 40,000 events had a reply of
// over 1 MiB in its headers alone. The change was committed, yet the reply could not be sent
// shorter (the "done write" trimming only shrinks the body), and the client was told it failed.
Deno.test("[catalog] a write touching more resources than its cache tags can name is answered as done", async () => {
  // Time enough for 40,000 changes and their facts (5 s is about 30,000 on this machine).
  await using system = await startTestSystem({ env: { REQUEST_TIMEOUT_MS: "30000" } });
  const admin = system.admin.token;
  const created = await system.call("POST", "/v1/event-topics", {
    token: admin,
    body: { data: { type: "event-topic", attributes: { name: "Everything" } } },
  });
  expectStatus(created, 201);
  const topicId = created.body.data.id;
  await system.sql`insert into events (identifier, name, starts_at, ends_at, state,
      event_topic_id)
    select lpad(to_hex(i), 8, '0'), 'Event ' || i, now() + interval '1 day',
      now() + interval '2 days', 'published', ${topicId}
    from generate_series(1, 40000) as i`;
  const [{ id: eventId }] = await system.sql`select id::text from events order by id limit 1`;
  // Cached for anonymous readers, with the topic it belongs to.
  expectStatus(await system.call("GET", `/v1/events/${eventId}`), 200);
  const cached = await system.call("GET", `/v1/events/${eventId}`);
  assert.equal(cached.headers.get("X-Cache"), "HIT");

  const deleted = await system.call("DELETE", `/v1/event-topics/${topicId}`, { token: admin });
  expectStatus(deleted, 200);
  const [{ linked }] = await system.sql`select count(*)::int as linked from events
    where event_topic_id is not null`;
  assert.equal(linked, 0);
  // The page showing the event's old topic is not served again from the cache.
  const read = await system.call("GET", `/v1/events/${eventId}/event-topic`);
  assert.notEqual(read.headers.get("X-Cache"), "HIT");
  const again = await system.call("GET", `/v1/events/${eventId}`);
  assert.notEqual(again.headers.get("X-Cache"), "HIT");
});
