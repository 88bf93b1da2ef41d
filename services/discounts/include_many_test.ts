import assert from "node:assert/strict";
import { catalogInternal } from "@shared/subjects.ts";
import { type CallResult, expectStatus } from "@testing/system.ts";
import { type DiscountsTestSystem, startDiscountsSystem } from "./_test_utils.ts";

const EVENTS = 1000;

/**
 * `path` as `token`'s user, how many access questions the catalog got meanwhile and how many
 * statements reading codes the discounts service sent to Postgres (postgres.js calls its pool's
 * `debug` with every statement it sends).
 */
async function counted(system: DiscountsTestSystem, path: string, token: string) {
  const asked = system.bus.nc.subscribe(system.bus.subject(catalogInternal.access.subject));
  await system.bus.nc.flush();
  let reads = 0;
  const options = system.dsql.options as { debug?: unknown };
  options.debug = (_connection: number, query: string) => {
    if (/\bcode_rows\b/.test(query)) reads++;
  };
  const began = performance.now();
  const reply: CallResult = await system.call("GET", path, { token }).finally(() => {
    options.debug = false;
  });
  const tookMs = Math.round(performance.now() - began);
  await system.bus.nc.flush();
  asked.unsubscribe();
  expectStatus(reply, 200);
  const questions = asked.getReceived();
  console.log(`${path}: ${tookMs} ms, ${questions} access questions, ${reads} code reads`);
  return { reply, questions, reads };
}

/**
 * A published event with a ticket, the co-organizer's live ticket code, a trashed one of the same
 * event and ticket (read with the others, it must stay out) and the admin's event code applied to
 * it (the admin's to see, never the co-organizer's).
 */
async function oneEventsCodes(system: DiscountsTestSystem) {
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const ticketId = await system.createTicket(cast.owner.token, cast.event.id, {
    type: "paid",
    price: 20,
  });
  const ticketCode = () =>
    system.createCode(cast.coorganizer.token, { eventId: cast.event.id, ticketIds: [ticketId] });
  const code = await ticketCode();
  const trashed = await ticketCode();
  expectStatus(
    await system.call("DELETE", `/v1/discount-codes/${trashed}`, { token: cast.owner.token }),
    200,
  );
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [cast.event.id],
  });
  return { cast, code, eventCode };
}

// A review (2026-12-05): the codes of a page of events or tickets were resolved by asking the
// catalog for the caller's roles one event at a time, a bus round trip per event; then, with one
// question, still read with one statement per event or ticket (1,000 for a page of 1,000).
Deno.test("[discounts] includes of codes on 1,000 events or tickets ask the catalog a bounded number of times", async (t) => {
  // Nothing kept (ACCESS_CACHE_TTL_MS=0): every question the includes ask reaches the catalog.
  await using system = await startDiscountsSystem({ accessTtlMs: 0 });
  const { cast, code, eventCode } = await oneEventsCodes(system);
  const more = await system.sql`insert into events (identifier, name, starts_at, ends_at, state,
      owner_id)
    select lpad(to_hex(i + 2000000), 8, '0'), 'Event ' || i, now() + interval '1 day',
      now() + interval '2 days', 'published', ${cast.owner.id}
    from generate_series(1, ${EVENTS - 1}) as i returning id`;
  await system.sql`insert into tickets (event_id, name, type)
    select id, 'Ticket', 'free' from events where id in ${system.sql(more.map((row) => row.id))}`;
  const token = { admin: system.admin.token, coorganizer: cast.coorganizer.token };
  const ids = (resources: { id: string }[]) => resources.map((r) => r.id).sort();

  await t.step("admin: tickets of 1,000 events include their codes in few questions", async () => {
    const path = `/v1/tickets?include=discount-codes&fields[ticket]=name&page[size]=${EVENTS}`;
    const { reply, questions, reads } = await counted(system, path, token.admin);
    assert.equal(reply.body.data.length, EVENTS);
    assert.deepEqual(ids(reply.body.included), [code]);
    assert.ok(questions <= 5, `${questions} access questions`);
    assert.equal(reads, 1, "one statement reads the codes of every ticket");
  });

  const cases = [
    // One statement per relationship; the co-organizer may see no event code: none is read.
    { who: "admin", include: "discount-codes,discount-code", seen: [code, eventCode].sort(), n: 2 },
    { who: "coorganizer", include: "discount-codes,discount-code", seen: [code], n: 1 },
  ] as const;
  for (const { who, include, seen, n } of cases) {
    await t.step(`${who}: events include their codes in few access questions`, async () => {
      const path = `/v1/events?include=${include}&fields[event]=name&page[size]=${EVENTS}`;
      const { reply, questions, reads } = await counted(system, path, token[who]);
      assert.equal(reply.body.data.length, EVENTS);
      assert.deepEqual(ids(reply.body.included), seen);
      assert.ok(questions <= 5, `${questions} access questions`);
      assert.equal(reads, n, `statements reading codes for ${include}`);
    });
  }
});

const USERS = 200;

// A review (2026-12-05): include=discount-codes on a page of users (the admin's list) read each
// user's codes with a statement of its own, 200 for a page of 200.
Deno.test("[discounts] include=discount-codes on 200 users reads their codes in one statement", async (t) => {
  await using system = await startDiscountsSystem({ accessTtlMs: 0 });
  const { cast, code, eventCode } = await oneEventsCodes(system);
  const users = await system.sql`insert into users (email, password_hash)
    select 'many-' || i || '@example.com', 'x' from generate_series(1, ${USERS}) as i
    returning id::text as id`;
  // Two of them marketers of a code each (written as the service writes them: the rows only).
  const marketers = [users[0].id, users[USERS - 1].id];
  const theirs = await system.dsql`insert into discount_codes (code, value, type, used_for,
      event_id, marketer_id)
    select 'MANY' || m, 5, 'amount', 'ticket', ${cast.event.id}, m::bigint
    from unnest(${marketers}::text[]) as m returning id::text as id, marketer_id::text as m`;
  const codeOf = new Map(theirs.map((row) => [row.m, row.id]));
  const linked = (body: { data: ResourceWithCodes[] }, userId: string) =>
    body.data.find((user) => user.id === userId)!.relationships["discount-codes"].data
      .map((r) => r.id);
  const ids = (resources: { id: string }[]) => resources.map((r) => r.id).sort();

  await t.step("admin: every user's codes in one statement and few questions", async () => {
    const path = "/v1/users?include=discount-codes&page[size]=0";
    const { reply, questions, reads } = await counted(system, path, system.admin.token);
    assert.ok(reply.body.data.length > USERS);
    const seen = [code, eventCode, ...codeOf.values()].sort();
    assert.deepEqual(ids(reply.body.included), seen);
    assert.deepEqual(linked(reply.body, cast.coorganizer.id), [code]);
    assert.deepEqual(linked(reply.body, system.admin.id), [eventCode]);
    for (const m of marketers) assert.deepEqual(linked(reply.body, m), [codeOf.get(m)]);
    assert.deepEqual(linked(reply.body, users[1].id), []);
    assert.ok(questions <= 5, `${questions} access questions`);
    assert.equal(reads, 1, "one statement reads the codes of every user");
  });

  await t.step("a user: only their own codes, in one statement", async () => {
    const path = `/v1/users/${cast.coorganizer.id}?include=discount-codes`;
    const { reply, questions, reads } = await counted(system, path, cast.coorganizer.token);
    assert.deepEqual(ids(reply.body.included), [code]);
    assert.ok(questions <= 5, `${questions} access questions`);
    assert.equal(reads, 1);
  });
});

type ResourceWithCodes = {
  id: string;
  relationships: { "discount-codes": { data: { id: string }[] } };
};
