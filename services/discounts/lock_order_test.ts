/**
 * Writes that lock several codes lock them in id order (README, "Concurrent writes Postgres
 * refuses"). Each case holds a row from the test's own session, so that two writes (catalog facts
 * handled by two instances at once, or two requests) meet in the order that deadlocked.
 */
import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { exampleFact } from "@testing/facts.ts";
import { untilWaitingForLocks } from "@testing/table_lock.ts";
import type { Fact } from "@shared/facts.ts";
import { applyCatalogFacts } from "./follow_catalog.ts";
import { type DiscountsTestSystem, startDiscountsSystem } from "./_test_utils.ts";

/** Two ticket codes of one event, both on one ticket; the older one changed since. */
async function twoCodesOnATicket(system: DiscountsTestSystem) {
  const cast = await system.eventWithCast();
  const eventId = cast.event.id;
  const token = cast.owner.token;
  const ticketId = await system.createTicket(token, eventId);
  const older = await system.createCode(token, { eventId, ticketIds: [ticketId] });
  const newer = await system.createCode(token, { eventId, ticketIds: [ticketId] });
  // Its text changed since: its row now lies after the newer code's, where a scan meets it last.
  const text = `RENAMED${crypto.randomUUID().slice(0, 4)}`;
  const patched = await system.call("PATCH", `/v1/discount-codes/${older}`, {
    token,
    body: { data: { type: "discount-code", id: older, attributes: { code: text } } },
  });
  expectStatus(patched, 200);
  const scanned = await system.dsql`select id::text from discount_codes
    where event_id = ${eventId} order by ctid`;
  assert.deepEqual(scanned.map((row) => row.id), [newer, older], "a scan meets the newer first");
  return { cast, eventId, ticketId, older, newer };
}

/**
 * Handles `first`, then `second`, each as its own instance would, with code `held` locked by the
 * test until both wait: `first` for the held code, `second` too (in the order that deadlocked,
 * having locked another code already).
 */
async function handledTogether(
  system: DiscountsTestSystem,
  held: string,
  [first, second]: [Fact, Fact],
): Promise<PromiseSettledResult<void>[]> {
  const relay = system.discounts[0].relay;
  const session = await system.dsql.reserve();
  try {
    await session`begin`;
    await session`select 1 from discount_codes where id = ${held} for update`;
    const one = applyCatalogFacts(system.dsql, relay, [first]);
    await untilWaitingForLocks(system.dsql, { count: 1, what: first.type });
    const two = applyCatalogFacts(system.dsql, relay, [second]);
    await untilWaitingForLocks(system.dsql, { count: 2, what: `${first.type} and ${second.type}` });
    await session`commit`;
    return await Promise.allSettled([one, two]);
  } finally {
    session.release();
  }
}

function reasons(results: PromiseSettledResult<void>[]): string[] {
  return results.flatMap((result) =>
    result.status === "rejected" ? [String((result.reason as Error).message)] : []
  );
}

// A ticket's deletion locks its codes in id order; an event's deletion trashed its ticket codes
// in the order its scan met them (a code changed since came last). Handled at once by two
// instances, they deadlocked and Postgres aborted one: its batch came back after a second.
Deno.test("[discounts] an event's deletion and its ticket's, handled at once: no deadlock", async () => {
  await using system = await startDiscountsSystem();
  const { eventId, ticketId, older, newer } = await twoCodesOnATicket(system);
  const results = await handledTogether(system, older, [
    exampleFact("catalog.ticket.deleted", { id: ticketId }),
    exampleFact("catalog.event.deleted", { id: eventId }),
  ]);
  assert.deepEqual(reasons(results), []);
  const rows = await system.dsql`select id::text, deleted_at is not null as trashed,
    (select count(*)::int from discount_code_tickets t where t.discount_code_id = c.id) as tickets
    from discount_codes c where id in (${older}, ${newer}) order by id`;
  assert.deepEqual(rows.map((row) => [row.trashed, row.tickets]), [[true, 0], [true, 0]]);
});

// A purged user's codes were unset as marketer in the order the update met them; a ticket's
// deletion locks them in id order: the same deadlock, between a user's purge and a ticket's.
Deno.test("[discounts] a marketer's purge and a ticket's deletion, handled at once: no deadlock", async () => {
  await using system = await startDiscountsSystem();
  const { cast, ticketId, older, newer } = await twoCodesOnATicket(system);
  const purged = { ...exampleFact("catalog.user.deleted", { id: cast.owner.id }), purged: true };
  const results = await handledTogether(system, older, [
    exampleFact("catalog.ticket.deleted", { id: ticketId }),
    purged as Fact,
  ]);
  assert.deepEqual(reasons(results), []);
  const rows = await system.dsql`select marketer_id,
    (select count(*)::int from discount_code_tickets t where t.discount_code_id = c.id) as tickets
    from discount_codes c where id in (${older}, ${newer}) order by id`;
  assert.deepEqual(rows.map((row) => [row.marketer_id, row.tickets]), [[null, 0], [null, 0]]);
});

// Event codes applied to the same events, named in other orders: each write inserted its
// applications in the order the client named the events, so one could hold an event's row
// (unique: one event code per event) that the other wanted while wanting one the other held.
// Postgres aborted one: a 503 where the unique index makes the later of the two a 409.
Deno.test("[discounts] two event codes applied to the same events at once: a 409, no deadlock", async () => {
  await using system = await startDiscountsSystem();
  const token = system.admin.token;
  const events: string[] = [];
  for (let i = 0; i < 4; i++) events.push((await system.createEvent(token)).id);
  const [e1, e2, e3, elsewhere] = events;
  const applied = await system.createCode(token, { usedFor: "event", eventIds: [elsewhere] });
  const session = await system.dsql.reserve();
  let replies: { status: number }[];
  try {
    // The test's own session applies a code to the third event, uncommitted: the first write
    // applies the first event, then waits for the third.
    await session`begin`;
    await session`insert into discount_code_events (event_id, discount_code_id)
      values (${e3}, ${applied})`;
    const one = system.postCode(token, { usedFor: "event", eventIds: [e1, e3, e2] });
    await untilWaitingForLocks(system.dsql, { count: 1, what: "the first write" });
    const two = system.postCode(token, { usedFor: "event", eventIds: [e2, e1] });
    await untilWaitingForLocks(system.dsql, { count: 2, what: "both writes" });
    await session`rollback`;
    replies = await Promise.all([one, two]);
  } finally {
    session.release();
  }
  assert.deepEqual(replies.map((reply) => reply.status), [201, 409]);
});

// A purged event's ticket codes were locked (and deleted) before the event code applied to it,
// whatever their ids; a purged marketer's codes are locked in id order. Handled at once by two
// instances, an event's purge and the purge of the admin who made its codes deadlocked.
Deno.test("[discounts] an event's purge and its codes' marketer's, handled at once: no deadlock", async () => {
  await using system = await startDiscountsSystem();
  const token = system.admin.token;
  const eventId = (await system.createEvent(token)).id;
  const eventCode = await system.createCode(token, { usedFor: "event", eventIds: [eventId] });
  const ticketCode = await system.createCode(token, { eventId });
  assert.ok(Number(eventCode) < Number(ticketCode));
  const purge = <F extends Fact>(fact: F): F => ({ ...fact, purged: true });
  const results = await handledTogether(system, eventCode, [
    purge(exampleFact("catalog.user.deleted", { id: system.admin.id })),
    purge(exampleFact("catalog.event.deleted", { id: eventId })),
  ]);
  assert.deepEqual(reasons(results), []);
  const rows = await system.dsql`select id::text, marketer_id, event_ids from code_rows
    order by id`;
  assert.deepEqual(rows.map((row) => [row.id, row.marketer_id, row.event_ids]), [
    [eventCode, null, []],
  ]);
});
