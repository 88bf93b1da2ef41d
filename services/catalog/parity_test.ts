import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

const byId = (id: string) =>
  encodeURIComponent(JSON.stringify([{ name: "id", op: "eq", val: id }]));
const ids = (data: { id: string }[]) => data.map((r) => r.id);

Deno.test("[catalog] GET lists filter by id, as the original allowed", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topicId = await system.createTopic("Parity");
  await system.createTopic("Other");
  const subTopicId = await system.createSubTopic(topicId, "Sub");
  await system.createSubTopic(topicId, "Sub two");
  const event = await system.createEvent(owner.token, { attributes: { state: "published" } });
  await system.createEvent(owner.token, { attributes: { state: "published" } });
  const ticketId = await system.createTicket(owner.token, event.id);
  await system.createTicket(owner.token, event.id);
  const admin = { token: system.admin.token };

  const cases: [string, string][] = [
    ["/v1/event-topics", topicId],
    ["/v1/event-sub-topics", subTopicId],
    ["/v1/events", event.id],
    ["/v1/tickets", ticketId],
    ["/v1/users", owner.id],
  ];
  for (const [path, id] of cases) {
    await t.step(`${path} filter id eq`, async () => {
      const reply = await system.call("GET", `${path}?filter=${byId(id)}`, admin);
      expectStatus(reply, 200);
      assert.deepEqual(ids(reply.body.data), [id]);
    });
  }
  await t.step("an id that is no integer is a 400 naming filter", async () => {
    const reply = await system.call("GET", `/v1/events?filter=${byId("abc")}`);
    expectError(reply, 400, { parameter: "filter" });
  });
  await t.step("roles filter by name and title-name", async () => {
    const filter = encodeURIComponent(JSON.stringify([{ name: "id", op: "ne", val: "owner" }]));
    const reply = await system.call("GET", `/v1/roles?filter=${filter}`, admin);
    expectStatus(reply, 200);
    assert.deepEqual(ids(reply.body.data), ["coorganizer", "organizer"]);
    const title = encodeURIComponent(
      JSON.stringify([{ name: "title-name", op: "ilike", val: "%co%" }]),
    );
    const titled = await system.call("GET", `/v1/roles?filter=${title}`, admin);
    expectStatus(titled, 200);
    assert.deepEqual(ids(titled.body.data), ["coorganizer"]);
  });
});

Deno.test("[catalog] GET resources carry the attributes the original's clients read", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token);
  const ticketId = await system.createTicket(owner.token, event.id, { quantity: 40 });

  await t.step("a ticket's order limits, derived from its stock", async () => {
    const reply = await system.call("GET", `/v1/tickets/${ticketId}`, { token: owner.token });
    expectStatus(reply, 200);
    const attributes = reply.body.data.attributes;
    assert.equal(attributes["is-hidden"], false);
    assert.equal(attributes["min-order"], 1);
    assert.equal(attributes["max-order"], 40);
  });
  await t.step("an event's image and online attributes", () => {
    const attributes = event.resource.attributes;
    assert.equal(attributes["logo-url"], null);
    assert.equal(attributes["original-image-url"], null);
    assert.equal(attributes["is-event-online"], false);
  });
  await t.step("a role's deleted-at and a user's avatar", async () => {
    const role = await system.call("GET", "/v1/roles/owner");
    expectStatus(role, 200);
    assert.equal(role.body.data.attributes["deleted-at"], null);
    const me = await system.call("GET", `/v1/users/${owner.id}`, { token: owner.token });
    expectStatus(me, 200);
    assert.equal(me.body.data.attributes["avatar-url"], null);
    assert.equal(me.body.data.attributes["is-marketer"], false);
    // No email verification here: the frontend disables ordering for an unverified user.
    assert.equal(me.body.data.attributes["is-verified"], true);
  });
});

Deno.test("[catalog] GET with a query parameter of empty name ignores it, as the original did", async () => {
  await using system = await startTestSystem();
  const topic = await system.createTopic("Nameless");
  const reply = await system.call("GET", "/v1/event-topics?=1");
  expectStatus(reply, 200);
  assert.deepEqual(reply.body.data.map((t: { id: string }) => t.id), [topic]);
});
