import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { expectStatus, type TestFact } from "@testing/system.ts";
import { applyCatalogFacts, LATER_CODE_MARGIN_MS } from "./follow_catalog.ts";
import { exampleFact } from "@testing/facts.ts";
import { codeWithTicket, type DiscountsTestSystem, startDiscountsSystem } from "./_test_utils.ts";

/** The discounts' facts about code `id`, once `done` says the last one has come. */
async function factsOfCode(
  system: DiscountsTestSystem,
  id: string,
  done: (facts: TestFact[]) => boolean,
): Promise<TestFact[]> {
  let found: TestFact[] = [];
  await system.catalog.relay.flush();
  await eventually(
    async () => {
      await system.discounts[0].relay.flush();
      found = (await system.readFacts()).filter((f) =>
        f.source === "discounts" && f.data.id === id
      );
      return done(found);
    },
    10_000,
    `the facts of code ${id}`,
  );
  return found;
}

/** Applies the catalog's fact of `type` about `id` again, as a redelivery would. */
async function redeliver(system: DiscountsTestSystem, type: string, id: string): Promise<void> {
  const fact = (await system.readFacts()).find((f) => f.type === type && f.data.id === id);
  assert.ok(fact, `the catalog's ${type} fact`);
  const before = (await system.readFacts()).length;
  await applyCatalogFacts(system.dsql, system.discounts[0].relay, [fact]);
  await system.discounts[0].relay.flush();
  assert.equal((await system.readFacts()).length, before, "a redelivery changes nothing");
}

const del = (system: DiscountsTestSystem, path: string, token = system.admin.token) =>
  system.call("DELETE", path, { token });

Deno.test("[discounts] a purged ticket is detached from every code, trashed ones too, each announced", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const ticket = await system.createTicket(cast.owner.token, cast.event.id);
  const code = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
  });
  // The event's soft delete takes the code to the trash, still attached to the ticket.
  expectStatus(await del(system, `/v1/events/${cast.event.id}`, cast.owner.token), 200);
  await factsOfCode(system, code, (f) => f.some((x) => x.type.endsWith(".deleted")));
  expectStatus(await del(system, `/v1/tickets/${ticket}?permanent=true`), 200);
  const facts = await factsOfCode(system, code, (f) => f.at(-1)!.type.endsWith(".updated"));
  const last = facts.at(-1)!;
  assert.deepEqual(last.data.tickets, []);
  assert.ok(last.data["deleted-at"], "it stays deleted in a mirror that applies the data");
  assert.equal(last.actorid, system.admin.id);
  const reply = await system.call("GET", `/v1/discount-codes/${code}?get_trashed=true`, {
    token: system.admin.token,
  });
  expectStatus(reply, 200);
  assert.deepEqual(reply.body.data.relationships.tickets.data ?? [], []);
  const [left] = await system.dsql`select count(*)::int as n from discount_code_tickets
    where ticket_id = ${ticket}`;
  assert.equal(left.n, 0);
  await redeliver(system, "catalog.ticket.deleted", ticket);
});

Deno.test("[discounts] a purged event takes its ticket codes, live and trashed, for good", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const live = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const trashed = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [cast.event.id],
  });
  expectStatus(await del(system, `/v1/discount-codes/${trashed}`, cast.owner.token), 200);
  expectStatus(await del(system, `/v1/events/${cast.event.id}?permanent=true`), 200);
  for (const id of [live, trashed]) {
    const facts = await factsOfCode(system, id, (f) => f.at(-1)!.purged === true);
    const last = facts.at(-1)!;
    assert.equal(last.type, "discounts.discount-code.deleted");
    assert.equal(last.data.event, cast.event.id, "the row as it was");
    assert.equal(last.actorid, system.admin.id);
  }
  const rows = await system.dsql`select id from discount_codes
    where id in ${system.dsql([live, trashed])}`;
  assert.equal(rows.length, 0);
  const applied = await factsOfCode(system, eventCode, (f) => f.length === 2);
  assert.equal(applied[1].type, "discounts.discount-code.updated");
  assert.deepEqual(applied[1].data.events, []);
  await redeliver(system, "catalog.event.deleted", cast.event.id);
});

Deno.test("[discounts] a purged user is no code's marketer any more, each code announced", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const carol = cast.coorganizer;
  const live = await system.createCode(carol.token, { eventId: cast.event.id });
  const trashed = await system.createCode(carol.token, { eventId: cast.event.id });
  expectStatus(await del(system, `/v1/discount-codes/${trashed}`, carol.token), 200);
  expectStatus(await del(system, `/v1/users/${carol.id}?permanent=true`), 200);
  for (const id of [live, trashed]) {
    const facts = await factsOfCode(system, id, (f) => f.at(-1)!.data.marketer === null);
    const last = facts.at(-1)!;
    assert.equal(last.type, "discounts.discount-code.updated");
    assert.equal(last.actorid, system.admin.id);
    assert.equal(!!last.data["deleted-at"], id === trashed);
  }
  const reply = await system.call("GET", `/v1/discount-codes/${live}/marketer`, {
    token: cast.owner.token,
  });
  expectStatus(reply, 200);
  assert.equal(reply.body.data, null);
  const code = await system.call("GET", `/v1/discount-codes/${live}`, { token: cast.owner.token });
  assert.equal(code.body.data.relationships.marketer.data ?? null, null);
  await redeliver(system, "catalog.user.deleted", carol.id);
});

// Found by a review: a deletion handled late, after the event's restore and a new code, trashed
// the new code with its event live.
Deno.test("[discounts] a deletion older than a ticket code leaves the code", async () => {
  await using system = await startDiscountsSystem();
  const { eventId, code } = await codeWithTicket(system);
  const live = async () =>
    (await system.dsql`select deleted_at from discount_codes where id = ${code}`)[0].deleted_at ===
      null;
  const at = (time: Date) => exampleFact("catalog.event.deleted", { id: eventId }, { time });
  const long = new Date(Date.now() - LATER_CODE_MARGIN_MS - 60_000);
  await applyCatalogFacts(system.dsql, system.discounts[0].relay, [at(long)]);
  assert.ok(await live(), "the code made after the deletion stays");
  await applyCatalogFacts(system.dsql, system.discounts[0].relay, [at(new Date())]);
  assert.ok(!await live(), "a deletion after the code trashes it");
});
