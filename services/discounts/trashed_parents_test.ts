import { eventually } from "@testing/eventually.ts";
import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { type DiscountsTestSystem, startDiscountsSystem } from "./_test_utils.ts";

const TRASHED = "get_trashed=true";

/** The ids of a reply's `included`, sorted. */
function includedIds(body: { included?: { id: string }[] }): string[] {
  return (body.included ?? []).map((resource) => resource.id).sort();
}

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

Deno.test("[discounts] include=discount-codes on a trashed parent brings its codes to admins who ask for the trash", async (t) => {
  await using system = await startDiscountsSystem();
  const { cast, eventId, ticketId, code, marketer } = await codeOfDeletedMarketer(system);
  const admin = system.admin.token;
  const owner = cast.owner.token;
  // Trashed first, the code keeps its ticket (a ticket's deletion detaches live codes only).
  expectStatus(await system.call("DELETE", `/v1/discount-codes/${code}`, { token: owner }), 200);
  expectStatus(await system.call("DELETE", `/v1/tickets/${ticketId}`, { token: owner }), 200);
  expectStatus(await system.call("DELETE", `/v1/events/${eventId}`, { token: owner }), 200);
  const parents = [
    `/v1/events/${eventId}`,
    `/v1/tickets/${ticketId}`,
    `/v1/users/${marketer.id}`,
  ];

  await t.step(
    "an admin asking for the trash gets them, linked, as the related routes list them",
    async () => {
      for (const parent of parents) {
        const reply = await system.call("GET", `${parent}?${TRASHED}&include=discount-codes`, {
          token: admin,
        });
        expectStatus(reply, 200, parent);
        const linkage = reply.body.data.relationships["discount-codes"].data;
        assert.deepEqual(linkage, [{ type: "discount-code", id: code }], parent);
        assert.deepEqual(includedIds(reply.body), [code], parent);
        const related = await system.call("GET", `${parent}/discount-codes?${TRASHED}`, {
          token: admin,
        });
        assert.deepEqual(related.body.data.map((c: { id: string }) => c.id), [code], parent);
      }
    },
  );

  await t.step("the code's marketer comes from the trash too, included or related", async () => {
    const codePath = `/v1/discount-codes/${code}`;
    const included = await system.call("GET", `${codePath}?${TRASHED}&include=marketer`, {
      token: admin,
    });
    assert.deepEqual(includedIds(included.body), [marketer.id]);
    const related = await system.call("GET", `${codePath}/marketer?${TRASHED}`, { token: admin });
    expectStatus(related, 200);
    assert.equal(related.body.data?.id, marketer.id);
  });

  await t.step("an event's event code stays null: its deletion un-applied it", async () => {
    const reply = await system.call("GET", `${parents[0]}?${TRASHED}&include=discount-code`, {
      token: admin,
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.relationships["discount-code"].data, null);
  });

  await t.step("nobody else sees more: the trashed parents stay hidden from them", async () => {
    for (const parent of parents.slice(0, 2)) {
      const reply = await system.call("GET", `${parent}?${TRASHED}&include=discount-codes`, {
        token: owner,
      });
      expectError(reply, 404, {}, parent);
    }
  });
});

Deno.test("[discounts] include=discount-codes with get_trashed shows trashed codes of a live event to admins only", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const token = cast.coorganizer.token;
  const live = await system.createCode(token, { eventId });
  const trashed = await system.createCode(token, { eventId });
  expectStatus(await system.call("DELETE", `/v1/discount-codes/${trashed}`, { token }), 200);
  const path = `/v1/events/${eventId}?${TRASHED}&include=discount-codes`;
  const read = async (as: string) => {
    const reply = await system.call("GET", path, { token: as });
    expectStatus(reply, 200);
    return reply.body;
  };
  // As `/v1/events/{id}/discount-codes?get_trashed=true` lists them to each.
  assert.deepEqual(includedIds(await read(system.admin.token)), [live, trashed].sort());
  assert.deepEqual(includedIds(await read(token)), [live], "a co-organizer: live codes only");
  const plain = await system.call("GET", `/v1/events/${eventId}?include=discount-codes`, {
    token: system.admin.token,
  });
  assert.deepEqual(includedIds(plain.body), [live], "an admin who did not ask: live codes only");
});

Deno.test("[discounts] a trashed code's event from the trash comes to admins who ask for it, included or related", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const owner = cast.owner.token;
  const code = await system.createCode(owner, { eventId });
  // The event's deletion trashes its codes with it, once discounts has its fact.
  expectStatus(await system.call("DELETE", `/v1/events/${eventId}`, { token: owner }), 200);
  const admin = system.admin.token;
  const codeRead = () => system.call("GET", `/v1/discount-codes/${code}`, { token: admin });
  await eventually(async () => (await codeRead()).status === 404, 10_000, "the code in the trash");
  const included = await system.call(
    "GET",
    `/v1/discount-codes/${code}?${TRASHED}&include=event`,
    { token: admin },
  );
  expectStatus(included, 200);
  assert.deepEqual(included.body.data.relationships.event.data, { type: "event", id: eventId });
  assert.deepEqual(includedIds(included.body), [eventId]);
  const related = await system.call("GET", `/v1/discount-codes/${code}/event?${TRASHED}`, {
    token: admin,
  });
  expectStatus(related, 200);
  assert.equal(related.body.data?.id, eventId);
  assert.ok(related.body.data.attributes["deleted-at"], "the event, from the trash");
  // The code itself is hidden from everyone else; the admin who does not ask sees no trash.
  const ownerRead = await system.call("GET", `/v1/discount-codes/${code}?${TRASHED}`, {
    token: owner,
  });
  expectError(ownerRead, 404);
  const plain = await system.call("GET", `/v1/discount-codes/${code}/event`, { token: admin });
  expectError(
    plain,
    404,
    {},
    "the code is in the trash: an admin who does not ask is not shown it",
  );
});
