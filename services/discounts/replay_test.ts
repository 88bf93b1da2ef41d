import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { expectStatus } from "@testing/system.ts";
import { applyCatalogFacts } from "./follow_catalog.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

// Found by a backup-and-restore review: the README's way to rebuild a follower (a durable made
// anew, or under a new name, from the stream's start or a backup's time) hands every old fact
// over again. A deletion of an event that an admin restored since, replayed, trashed the code
// made after the restore (with a `discount-code.deleted` fact and an activity naming the owner),
// as long as the code was made within LATER_CODE_MARGIN_MS of the deletion; payments' follower
// likewise removed the Stripe link made then and deauthorized its account.
Deno.test("[discounts] a replayed deletion of an event restored since leaves the code made after the restore", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  expectStatus(
    await system.call("DELETE", `/v1/events/${eventId}`, { token: cast.owner.token }),
    200,
  );
  const projected = async () =>
    (await system.dsql`select deleted from catalog_events where id = ${eventId}`)[0]?.deleted;
  await eventually(async () => await projected() === true, 10_000, "the deletion followed");
  const restore = await system.call("PATCH", `/v1/events/${eventId}?get_trashed=true`, {
    token: system.admin.token,
    body: { data: { type: "event", id: eventId, attributes: { "deleted-at": null } } },
  });
  expectStatus(restore, 200);
  await eventually(async () => await projected() === false, 10_000, "the restore followed");
  const code = await system.createCode(cast.owner.token, { eventId });

  // The replay: the catalog's deletion handed over again, after everything that followed it.
  await system.catalog.relay.flush();
  const deletion = (await system.readFacts()).find((f) =>
    f.type === "catalog.event.deleted" && f.data.id === eventId
  );
  assert.ok(deletion, "the catalog's deletion fact");
  await applyCatalogFacts(system.dsql, system.discounts[0].relay, [deletion]);

  const read = await system.call("GET", `/v1/discount-codes/${code}`, { token: cast.owner.token });
  expectStatus(read, 200);
  assert.equal(read.body.data.attributes["deleted-at"], null);
});
