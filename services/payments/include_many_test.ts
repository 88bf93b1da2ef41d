import assert from "node:assert/strict";
import { catalogInternal } from "@shared/subjects.ts";
import { expectStatus } from "@testing/system.ts";
import { startPaymentsSystem } from "./_test_utils.ts";

const EVENTS = 1000;

type Resource = { id: string; relationships: Record<string, { data: { id: string } | null }> };

const sortedIds = (resources: { id: string }[]) => resources.map((r) => r.id).sort();

/** The authorizations a page of events links to. */
function linkedIds(data: Resource[]): string[] {
  const linkage = data.map((r) => r.relationships["stripe-authorization"].data);
  return sortedIds(linkage.filter((data) => data !== null));
}

// A review (2026-12-05): the stripe-authorizations of a page of events were resolved by asking
// the catalog for the caller's roles one event at a time, a bus round trip per event: about
// 1.3 s for 1,000 events, near the request timeout on a slower machine.
Deno.test("[payments] include=stripe-authorization on 1,000 events asks the catalog a bounded number of times", async (t) => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const mine = await p.link(cast.owner.token, cast.event.id, p.grant().code);
  expectStatus(mine, 201);
  // Another owner's linked event: the admin sees its authorization, the organizer does not.
  const other = await p.stripeEvent();
  const theirs = await p.link(other.owner.token, other.event.id, p.grant().code);
  expectStatus(theirs, 201);
  const sql = p.system.sql;
  // The organizer organizes every other event here too; the rest are published strangers'.
  const more = await sql`insert into events (identifier, name, starts_at, ends_at, state,
      owner_id)
    select lpad(to_hex(i + 1000000), 8, '0'), 'Event ' || i, now() + interval '1 day',
      now() + interval '2 days', 'published', ${cast.owner.id}
    from generate_series(1, ${EVENTS - 2}) as i returning id`;
  await sql`insert into users_events_roles (user_id, event_id, role_name)
    select ${cast.organizer.id}, id, 'organizer' from events
    where id in ${sql(more.filter((_, i) => i % 2 === 0).map((row) => row.id))}`;
  // Only the name besides the linkage: 1,000 whole events are more than the bus carries at once.
  const path = `/v1/events?include=stripe-authorization&fields[event]=name,stripe-authorization` +
    `&page[size]=${EVENTS}`;
  const seen = {
    admin: sortedIds([mine.body.data, theirs.body.data]),
    organizer: [mine.body.data.id],
  };

  for (const who of ["admin", "organizer"] as const) {
    const token = who === "admin" ? p.system.admin.token : cast.organizer.token;
    await t.step(`${who}: the authorizations are included, in few access questions`, async () => {
      const bus = p.system.bus;
      const asked = bus.nc.subscribe(bus.subject(catalogInternal.access.subject));
      await bus.nc.flush();
      const began = performance.now();
      const reply = await p.call("GET", path, { token });
      const tookMs = performance.now() - began;
      await bus.nc.flush();
      asked.unsubscribe();
      expectStatus(reply, 200);
      assert.equal(reply.body.data.length, EVENTS);
      assert.deepEqual(sortedIds(reply.body.included), seen[who]);
      assert.deepEqual(linkedIds(reply.body.data), seen[who]);
      console.log(`${who}: ${Math.round(tookMs)} ms, ${asked.getReceived()} access questions`);
      assert.ok(asked.getReceived() <= 5, `${asked.getReceived()} access questions`);
    });
  }

  await t.step("an event changed since: only it is asked about again", async () => {
    const renamed = await p.call("PATCH", `/v1/events/${other.event.id}`, {
      token: other.owner.token,
      body: { data: { type: "event", id: other.event.id, attributes: { name: "Renamed" } } },
    });
    expectStatus(renamed, 200);
    const bus = p.system.bus;
    const asked = bus.nc.subscribe(bus.subject(catalogInternal.access.subject));
    await bus.nc.flush();
    const reply = await p.call("GET", path, { token: cast.organizer.token });
    await bus.nc.flush();
    asked.unsubscribe();
    expectStatus(reply, 200);
    assert.deepEqual(linkedIds(reply.body.data), seen.organizer);
    const questions = [];
    for await (const message of asked) questions.push(message.json<{ events?: string[] }>());
    assert.deepEqual(questions.map((question) => question.events), [[other.event.id]]);
  });

  await t.step("answers kept from that one question are dropped by a revocation", async () => {
    const revoked = await p.call("DELETE", `/v1/users-events-roles/${cast.grants.organizer}`, {
      token: cast.owner.token,
    });
    expectStatus(revoked, 200);
    const reply = await p.call("GET", path, { token: cast.organizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(linkedIds(reply.body.data), []);
    assert.deepEqual(reply.body.included ?? [], []);
  });
});
