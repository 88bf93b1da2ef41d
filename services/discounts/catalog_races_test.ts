/**
 * A code written while the catalog deletes what it names (store/catalog_names.ts): each race is
 * held open on purpose, the code's row or table locked by the test while the catalog deletes, so
 * the order in which the write and the deletion's handling meet is the same on every run.
 */
import { eventually } from "@testing/eventually.ts";
import { expectStatus } from "@testing/system.ts";
import { discountsRedemption } from "@shared/subjects.ts";
import { type DiscountsTestSystem, startDiscountsSystem } from "./_test_utils.ts";

/** Sessions of the test database waiting for a lock. */
async function lockWaiters(system: DiscountsTestSystem): Promise<number> {
  const [{ count }] = await system.dsql`select count(*)::int as count from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'`;
  return count;
}

/** Runs `hold` (a lock) in a transaction of the test's own until `release` is called. */
async function holding(system: DiscountsTestSystem, hold: (sql: typeof system.dsql) => unknown) {
  const held = await system.dsql.reserve();
  await held`begin`;
  await hold(held as unknown as typeof system.dsql);
  return {
    async release() {
      await held`commit`;
      held.release();
    },
  };
}

Deno.test("[discounts] a code written while the catalog deletes what it names does not outlive it", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const token = cast.owner.token;
  const paid = { type: "paid", price: 20 };

  await t.step(
    "a ticket attached while it is deleted: detached once the write commits",
    async () => {
      const kept = await system.createTicket(token, eventId, paid);
      const doomed = await system.createTicket(token, eventId, paid);
      const code = await system.createCode(token, { eventId, ticketIds: [kept] });
      const lock = await holding(
        system,
        (sql) => sql`select id from discount_codes where id = ${code} for update`,
      );
      const adding = system.call("POST", `/v1/discount-codes/${code}/relationships/tickets`, {
        token,
        body: { data: [{ type: "ticket", id: doomed }] },
      });
      await eventually(
        async () => await lockWaiters(system) >= 1,
        5_000,
        "the write to wait",
      );
      expectStatus(await system.call("DELETE", `/v1/tickets/${doomed}`, { token }), 200);
      await system.catalog.relay.flush();
      // The deletion's handling waits for the write (before, it found nothing to detach and left).
      await eventually(async () => await lockWaiters(system) >= 2, 5_000, "the follower to wait");
      await lock.release();
      expectStatus(await adding, 200);
      await eventually(
        async () =>
          (await system.dsql`select count(*)::int as count from discount_code_tickets
          where ticket_id = ${doomed}`)[0].count === 0,
        5_000,
        "the deleted ticket to be detached",
      );
    },
  );

  await t.step("a ticket code created while its event is deleted: trashed with it", async () => {
    const other = await system.eventWithCast({ attributes: { state: "published" } });
    const ticket = await system.createTicket(other.owner.token, other.event.id, paid);
    const lock = await holding(system, (sql) => sql`lock table discount_codes in exclusive mode`);
    const creating = system.postCode(other.owner.token, {
      eventId: other.event.id,
      ticketIds: [ticket],
    });
    await eventually(async () => await lockWaiters(system) >= 1, 5_000, "the insert to wait");
    const deleted = await system.call("DELETE", `/v1/events/${other.event.id}`, {
      token: other.owner.token,
    });
    expectStatus(deleted, 200);
    await system.catalog.relay.flush();
    await eventually(async () => await lockWaiters(system) >= 2, 5_000, "the follower to wait");
    await lock.release();
    const created = await creating;
    expectStatus(created, 201, "the event was live when checked under its lock");
    await eventually(
      async () =>
        (await system.dsql`select deleted_at from discount_codes
          where id = ${created.body.data.id}`)[0].deleted_at !== null,
      5_000,
      "the code to be trashed with its event",
    );
  });
});

/** Sessions waiting for a lock, but the relays' drains (they wait for the outbox as well). */
async function writersWaiting(system: DiscountsTestSystem): Promise<number> {
  const [{ count }] = await system.dsql`select count(*)::int as count from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'
      and query not like '%with locked as%'`;
  return count;
}

/** What the last fact the stream holds for discount code `id` says of its value and links. */
async function lastCodeFact(system: DiscountsTestSystem, id: string) {
  const facts = (await system.readFacts()).filter((fact) =>
    fact.type.startsWith("discounts.discount-code.") && fact.data.id === id
  );
  const data = facts.at(-1)?.data;
  return data && {
    value: data.value,
    "used-count": data["used-count"],
    tickets: data.tickets,
    events: data.events,
  };
}

/** The same as the database holds it. */
async function codeAsStored(system: DiscountsTestSystem, id: string) {
  const [{ value, used_count: usedCount }] = await system.dsql`select value, used_count
    from code_rows where id = ${id}`;
  const ids = (rows: { id: string }[]) => rows.map((row) => row.id);
  return {
    value: Number(value),
    "used-count": usedCount,
    tickets: ids(
      await system.dsql`select ticket_id::text as id from discount_code_tickets
        where discount_code_id = ${id} order by ticket_id`,
    ),
    events: ids(
      await system.dsql`select event_id::text as id from discount_code_events
        where discount_code_id = ${id} order by event_id`,
    ),
  };
}

// Found by a review: the follower unapplied a deleted event from its event code (or detached a
// deleted ticket) without locking the code, and read it while a change of it had not committed (a
// PATCH, a reservation: neither waits for the deletion of a ticket or event the code already
// names): its fact showed the code as it was before that change, the change's fact showed it
// with the event or ticket, and a subscriber mirroring the facts kept one or the other, never what
// the database held.
Deno.test("[discounts] a code changed while the catalog deletes what it names: its last fact is what it is", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const admin = system.admin.token;
  const paid = { type: "paid", price: 20 };
  const eventCode = async () => {
    const other = await system.eventWithCast({ attributes: { state: "published" } });
    const code = await system.createCode(admin, { usedFor: "event", eventIds: [other.event.id] });
    return { code, deleting: `/v1/events/${other.event.id}`, by: other.owner.token };
  };
  const ticketCode = async () => {
    const ticket = await system.createTicket(cast.owner.token, cast.event.id, paid);
    const kept = await system.createTicket(cast.owner.token, cast.event.id, paid);
    const code = await system.createCode(cast.owner.token, {
      eventId: cast.event.id,
      ticketIds: [ticket, kept],
    });
    return { code, deleting: `/v1/tickets/${ticket}`, by: cast.owner.token };
  };
  const patch = (code: string) =>
    system.call("PATCH", `/v1/discount-codes/${code}`, {
      token: admin,
      body: { data: { type: "discount-code", id: code, attributes: { value: 3 } } },
    }).then((reply) => expectStatus(reply, 200));
  const reserve = (code: string) =>
    system.bus.request(discountsRedemption.reserve, {
      codeId: code,
      orderId: `order-${code}`,
      quantity: 1,
    });
  const cases = [
    ["an event code unapplied from a deleted event, during a PATCH", eventCode, patch],
    ["a ticket code's deleted ticket detached, during a reservation", ticketCode, reserve],
  ] as const;
  for (const [name, make, change] of cases) {
    await t.step(name, async () => {
      const { code, deleting, by } = await make();
      // The change waits at its fact, the code locked and read, until the test lets it go.
      const lock = await holding(system, (sql) => sql`lock table outbox in exclusive mode`);
      const changing = change(code);
      await eventually(async () => await writersWaiting(system) >= 1, 5_000, "the change to wait");
      expectStatus(await system.call("DELETE", deleting, { token: by }), 200);
      await system.catalog.relay.flush();
      await eventually(
        async () => await writersWaiting(system) >= 2,
        5_000,
        "the follower to wait",
      );
      await lock.release();
      await changing;
      await eventually(
        async () =>
          JSON.stringify(await lastCodeFact(system, code)) ===
            JSON.stringify(await codeAsStored(system, code)),
        5_000,
        "the code's last fact to show it as it is",
      );
    });
  }
});
