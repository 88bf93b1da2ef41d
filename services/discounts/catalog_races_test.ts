/**
 * A code written while the catalog deletes what it names (store/catalog_names.ts): each race is
 * held open on purpose, the code's row or table locked by the test while the catalog deletes, so
 * the order in which the write and the deletion's handling meet is the same on every run.
 */
import { eventually } from "@testing/eventually.ts";
import { expectStatus } from "@testing/system.ts";
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
