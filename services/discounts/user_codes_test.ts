import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

type Resource = { type: string; id: string };
const ids = (data: Resource[]) => data.map((r) => r.id).sort();

Deno.test("[discounts] GET /v1/users/{id}/discount-codes: a former co-organizer no longer lists the event's codes", async (t) => {
  await using system = await startDiscountsSystem();
  // A draft event where carol co-organizes, and one she owns.
  const cast = await system.eventWithCast();
  const carol = cast.coorganizer;
  const own = await system.createEvent(carol.token);
  const ticket = await system.createTicket(cast.owner.token, cast.event.id);
  const lost = [
    await system.createCode(carol.token, { eventId: cast.event.id, ticketIds: [ticket] }),
    await system.createCode(carol.token, { eventId: cast.event.id }),
  ];
  const kept = await system.createCode(carol.token, { eventId: own.id });
  expectStatus(
    await system.call("DELETE", `/v1/users-events-roles/${cast.grants.coorganizer}`, {
      token: cast.owner.token,
    }),
    200,
  );
  // The owner rotates a code carol created: she must not learn its new text.
  expectStatus(
    await system.call("PATCH", `/v1/discount-codes/${lost[0]}`, {
      token: cast.owner.token,
      body: {
        data: { type: "discount-code", id: lost[0], attributes: { code: "ROTATED", value: 9 } },
      },
    }),
    200,
  );
  const path = `/v1/users/${carol.id}/discount-codes`;

  await t.step("the list: only codes of events she still co-organizes, counted so", async () => {
    const reply = await system.call("GET", `${path}?include=event,tickets`, {
      token: carol.token,
    });
    expectStatus(reply, 200);
    assert.deepEqual(ids(reply.body.data), [kept]);
    assert.equal(reply.body.meta.count, 1);
    assert.deepEqual(reply.body.included?.map((r: Resource) => r.id) ?? [], [own.id]);
  });

  await t.step("paging, filters and sorts count only what she may see", async () => {
    const filter = encodeURIComponent(JSON.stringify([{ name: "value", op: "ge", val: 0 }]));
    const reply = await system.call(
      "GET",
      `${path}?page[size]=1&sort=-value&filter=${filter}`,
      { token: carol.token },
    );
    expectStatus(reply, 200);
    assert.deepEqual(ids(reply.body.data), [kept]);
    assert.equal(reply.body.meta.count, 1);
  });

  await t.step("the linkage and include=discount-codes on the user", async () => {
    const linkage = await system.call("GET", `/v1/users/${carol.id}/relationships/discount-codes`, {
      token: carol.token,
    });
    expectStatus(linkage, 200);
    assert.deepEqual(ids(linkage.body.data), [kept]);
    const user = await system.call("GET", `/v1/users/${carol.id}?include=discount-codes`, {
      token: carol.token,
    });
    expectStatus(user, 200);
    assert.deepEqual(ids(user.body.data.relationships["discount-codes"].data), [kept]);
    assert.deepEqual(ids(user.body.included ?? []), [kept]);
  });

  await t.step("admins still see every code she created", async () => {
    const reply = await system.call("GET", path, { token: system.admin.token });
    expectStatus(reply, 200);
    assert.deepEqual(ids(reply.body.data), [...lost, kept].sort());
    const user = await system.call("GET", `/v1/users/${carol.id}?include=discount-codes`, {
      token: system.admin.token,
    });
    assert.deepEqual(
      ids(user.body.data.relationships["discount-codes"].data),
      [...lost, kept].sort(),
    );
  });
});
