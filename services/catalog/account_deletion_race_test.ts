/**
 * Writes that make a user an event's owner or give them a role, racing that user's account
 * deletion (a race review: sent a few milliseconds apart, an event created by a user deleting
 * their account was kept, owned by nobody live, and a role was granted to an account already
 * deleted). The deletion is held open here in a session of the test's own, as
 * `DELETE /v1/users/{id}` holds it: the user's row locked, `deleted_at` set, not yet committed.
 */
import assert from "node:assert/strict";
import { expectError, startTestSystem } from "@testing/system.ts";
import { holdTransaction, untilWaitingForLocks } from "@testing/table_lock.ts";

/** User `userId`'s deletion, begun and held until `release()` commits it. */
function holdAccountDeletion(databaseUrl: string, userId: string) {
  return holdTransaction(databaseUrl, async (tx) => {
    await tx`select id from catalog.users where id = ${userId} for update`;
    await tx`update catalog.users set deleted_at = now() where id = ${userId}`;
  });
}

function eventBody() {
  const starts = new Date(Date.now() + 24 * 3600_000);
  const ends = new Date(starts.getTime() + 3600_000);
  const attributes = {
    name: "Raced",
    "starts-at": starts.toISOString(),
    "ends-at": ends.toISOString(),
  };
  return { data: { type: "event", attributes } };
}

Deno.test("[catalog] an event created while its creator's account is deleted is a 401, not an event of nobody", async () => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  await using deletion = await holdAccountDeletion(system.databaseUrl, user.id);
  const created = system.call("POST", "/v1/events", { token: user.token, body: eventBody() });
  await untilWaitingForLocks(system.sql, { count: 1, what: "the event's creation" });
  await deletion.release();
  expectError(await created, 401);
  const owned = await system.sql`select id from events where owner_id = ${user.id}`;
  assert.deepEqual([...owned], [], "no event names the deleted user as its owner");
  const facts = (await system.readFacts()).filter((fact) => fact.type.includes(".event."));
  assert.deepEqual(facts.map((fact) => fact.type), [], "no event fact");
});

Deno.test("[catalog] a role granted while its user's account is deleted is a 422, no grant stored", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const user = await system.signUp();
  const event = await system.createEvent(owner.token);
  await using deletion = await holdAccountDeletion(system.databaseUrl, user.id);
  const body = {
    data: {
      type: "users-events-role",
      relationships: {
        user: { data: { type: "user", id: user.id } },
        event: { data: { type: "event", id: event.id } },
        role: { data: { type: "role", id: "organizer" } },
      },
    },
  };
  const granted = system.call("POST", "/v1/users-events-roles", { token: owner.token, body });
  await untilWaitingForLocks(system.sql, { count: 1, what: "the grant" });
  await deletion.release();
  expectError(await granted, 422, { pointer: "/data/relationships/user" });
  const grants = await system.sql`select id from users_events_roles where user_id = ${user.id}`;
  assert.deepEqual([...grants], [], "no grant names the deleted user");
});
