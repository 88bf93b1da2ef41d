import assert from "node:assert/strict";
import { expectStatus, startTestSystem } from "@testing/system.ts";

Deno.test("[catalog] fields[user] names any user attribute where users are included", async (t) => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const grant = cast.grants.coorganizer;
  await system.createTicket(cast.owner.token, eventId, { name: "Standard", price: 5 });
  // Every route that includes users, and what it includes through.
  const paths = [
    `/v1/events/${eventId}?include=owner`,
    `/v1/events/${eventId}/relationships/owner?include=owner`,
    `/v1/events/${eventId}/users-events-roles?include=user`,
    `/v1/users-events-roles/${grant}?include=user`,
    `/v1/events/${eventId}/tickets?include=event.owner`,
  ];

  await t.step("an admin, who sees users' emails, selects them (a 400 before)", async () => {
    for (const path of paths) {
      const reply = await system.call("GET", `${path}&fields[user]=email,is-admin`, {
        token: system.admin.token,
      });
      expectStatus(reply, 200);
      const users = reply.body.included.filter((r: { type: string }) => r.type === "user");
      assert.ok(users.length > 0, path);
      for (const user of users) {
        assert.deepEqual(Object.keys(user.attributes).sort(), ["email", "is-admin"], path);
      }
    }
  });

  await t.step("a co-organizer asking for others' emails gets none of them", async () => {
    const path =
      `/v1/events/${eventId}/users-events-roles?include=user&fields[user]=email,first-name`;
    const reply = await system.call("GET", path, { token: cast.coorganizer.token });
    expectStatus(reply, 200);
    const users = reply.body.included.filter((r: { type: string }) => r.type === "user");
    // The co-organizer and the others: without the others there are no emails to withhold.
    assert.deepEqual(
      users.map((user: { id: string }) => user.id).sort(),
      [cast.owner.id, cast.organizer.id, cast.coorganizer.id].sort(),
    );
    for (const user of users) {
      const expected = user.id === cast.coorganizer.id ? ["email", "first-name"] : ["first-name"];
      assert.deepEqual(Object.keys(user.attributes).sort(), expected, `user ${user.id}`);
    }
  });

  await t.step("a name no user has stays a 400 naming fields[user]", async () => {
    const reply = await system.call("GET", `${paths[0]}&fields[user]=nope`, {
      token: system.admin.token,
    });
    expectStatus(reply, 400);
    assert.deepEqual(reply.body.errors[0].source, { parameter: "fields[user]" });
  });
});

Deno.test("[catalog] users: password may be named in a fieldset, and email filters and sorts ignore case", async (t) => {
  await using system = await startTestSystem();
  const mixed = await system.signUp("Bob.Mixed@Example.com");
  const lower = await system.signUp("aaron@example.com");
  const admin = system.admin.token;

  await t.step(
    "fields[user]=password selects nothing (the original's write-only field)",
    async () => {
      const reply = await system.call("GET", `/v1/users/${mixed.id}?fields[user]=password`, {
        token: mixed.token,
      });
      expectStatus(reply, 200);
      assert.deepEqual(reply.body.data.attributes, {});
    },
  );

  // The original's users._email was citext (migration 7bb5891a9f2e).
  await t.step("email eq and sort ignore case, as the original's citext column", async () => {
    const filter = encodeURIComponent(
      JSON.stringify([{ name: "email", op: "eq", val: "bob.mixed@example.com" }]),
    );
    const found = await system.call("GET", `/v1/users?filter=${filter}`, { token: admin });
    expectStatus(found, 200);
    assert.deepEqual(found.body.data.map((u: { id: string }) => u.id), [mixed.id]);
    const sorted = await system.call("GET", "/v1/users?sort=email&page[size]=0", { token: admin });
    const ids = sorted.body.data.map((u: { id: string }) => u.id);
    // Byte order would put every capital first: Bob before aaron.
    assert.ok(ids.indexOf(lower.id) < ids.indexOf(mixed.id), "aaron before Bob");
  });
});
