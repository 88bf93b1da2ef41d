import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { type DiscountsTestSystem, startDiscountsSystem } from "./_test_utils.ts";

const TRASHED = "get_trashed=true";

/**
 * A published event with a paid ticket and a ticket code its co-organizer created, then the
 * co-organizer (the code's marketer) deleted.
 */
async function codeOfDeletedMarketer(system: DiscountsTestSystem) {
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const ticketId = await system.createTicket(cast.owner.token, eventId, { price: 10 });
  const code = await system.createCode(cast.coorganizer.token, { eventId, ticketIds: [ticketId] });
  const marketer = cast.coorganizer;
  expectStatus(
    await system.call("DELETE", `/v1/users/${marketer.id}`, { token: marketer.token }),
    200,
  );
  return { cast, eventId, ticketId, code, marketer };
}

Deno.test("[discounts] GET /v1/users/{id}/discount-codes of a deleted user answers admins who ask for the trash", async () => {
  await using system = await startDiscountsSystem();
  const { cast, code, marketer } = await codeOfDeletedMarketer(system);
  const admin = system.admin.token;
  // The catalog shows the deleted user to an admin asking for the trash, with these links.
  expectStatus(
    await system.call("GET", `/v1/users/${marketer.id}?${TRASHED}`, { token: admin }),
    200,
  );
  for (
    const path of [
      `/v1/users/${marketer.id}/discount-codes`,
      `/v1/users/${marketer.id}/relationships/discount-codes`,
    ]
  ) {
    expectError(await system.call("GET", path, { token: admin }), 404, {}, `${path} admin`);
    const other = await system.call("GET", `${path}?${TRASHED}`, { token: cast.owner.token });
    expectError(other, 403, {}, `${path} another user`);
    const reply = await system.call("GET", `${path}?${TRASHED}`, { token: admin });
    expectStatus(reply, 200, path);
    assert.deepEqual(reply.body.data.map((c: { id: string }) => c.id), [code], path);
  }
  const unknown = await system.call("GET", `/v1/users/999999/discount-codes?${TRASHED}`, {
    token: admin,
  });
  expectError(unknown, 404, {}, "a user that never was");
});
