import assert from "node:assert/strict";
import { factActor, factResource } from "@shared/facts.ts";
import { createLogger } from "@shared/log.ts";
import {
  expectStatus,
  grantOf,
  startTestSystem,
  type TestFact,
  type TestSystem,
  type TestUser,
} from "@testing/system.ts";
import { ensureFirstAdmin } from "./admin.ts";

const quiet = createLogger("catalog-test", "error");

/** The facts that `change` leaves on the stream (everything pending is flushed first). */
async function factsOf(system: TestSystem, change: () => Promise<unknown>): Promise<TestFact[]> {
  const before = (await system.readFacts()).length;
  await change();
  return (await system.readFacts()).slice(before);
}

/** Checks the CloudEvents envelope (readFacts already checked the data against its schema). */
function assertFact(
  fact: TestFact,
  expected: { type: string; actor: TestUser | null; resource: { type: string; id: string } },
) {
  assert.equal(fact.type, expected.type);
  assert.equal(fact.specversion, "1.0");
  assert.equal(fact.source, "catalog");
  assert.equal(fact.subject, `/v1/${expected.resource.type}s/${expected.resource.id}`);
  assert.deepEqual(
    factActor(fact),
    expected.actor ? { id: expected.actor.id, email: expected.actor.email } : null,
  );
  assert.deepEqual(factResource(fact), expected.resource);
  const text = JSON.stringify(fact);
  assert.doesNotMatch(text, /password|pbkdf2/i, "a fact carries a password (hash)");
}

Deno.test("[catalog] each change leaves exactly one fact on JetStream", async (t) => {
  await using system = await startTestSystem();
  const admin = system.admin;
  let alice: TestUser;
  let eventId = "";
  let ticketId = "";
  let topicId = "";

  await t.step("sign-up: user created by the new user, without the password", async () => {
    const email = `facts-${crypto.randomUUID().slice(0, 8)}@example.test`;
    const password = "facts password";
    let id = "";
    const facts = await factsOf(system, async () => {
      const reply = await system.call("POST", "/v1/users", {
        body: { data: { type: "user", attributes: { email, password } } },
      });
      expectStatus(reply, 201);
      id = reply.body.data.id;
    });
    assert.equal(facts.length, 1);
    assertFact(facts[0], {
      type: "catalog.user.created",
      // A sign-up is the new user's own act (api-surface §7: the real actor).
      actor: { id, email, password: "", token: "" },
      resource: { type: "user", id },
    });
    assert.equal(facts[0].data.email, email);
    assert.equal(facts[0].data.password_hash, undefined);
    assert.ok(!JSON.stringify(facts[0]).includes(password));
    alice = { id, email, password, token: "" };
  });

  await t.step("login: one fact with the user as actor", async () => {
    const facts = await factsOf(system, async () => {
      alice.token = await system.login(alice.email, alice.password);
    });
    assert.equal(facts.length, 1);
    assertFact(facts[0], {
      type: "catalog.user.logged-in",
      actor: alice,
      resource: { type: "user", id: alice.id },
    });
  });

  await t.step("a failed login and reads leave no fact", async () => {
    const facts = await factsOf(system, async () => {
      await system.call("POST", "/v1/auth/login", {
        body: { email: alice.email, password: "wrong password" },
        headers: { "Content-Type": "application/json" },
      });
      await system.call("GET", `/v1/users/${alice.id}`, { token: alice.token });
      await system.call("GET", "/v1/events");
    });
    assert.deepEqual(facts, []);
  });

  await t.step("user updated (a new password never travels)", async () => {
    const facts = await factsOf(system, async () => {
      expectStatus(
        await system.call("PATCH", `/v1/users/${alice.id}`, {
          token: alice.token,
          body: {
            data: {
              type: "user",
              id: alice.id,
              attributes: { password: "another facts password", "first-name": "Alice" },
            },
          },
        }),
        200,
      );
    });
    assert.equal(facts.length, 1);
    assertFact(facts[0], {
      type: "catalog.user.updated",
      actor: alice,
      resource: { type: "user", id: alice.id },
    });
    assert.equal(facts[0].data["first-name"], "Alice");
    // The new password ended every earlier token: alice logs in again.
    alice.password = "another facts password";
    alice.token = await system.login(alice.email, alice.password);
  });

  await t.step("event-topic created, updated, deleted by the admin", async () => {
    const created = await factsOf(system, async () => {
      topicId = await system.createTopic("Fact topic");
    });
    assert.equal(created.length, 1);
    assertFact(created[0], {
      type: "catalog.event-topic.created",
      actor: admin,
      resource: { type: "event-topic", id: topicId },
    });
    assert.equal(created[0].data.slug, "fact-topic");
    const updated = await factsOf(system, async () => {
      expectStatus(
        await system.call("PATCH", `/v1/event-topics/${topicId}`, {
          token: admin.token,
          body: {
            data: { type: "event-topic", id: topicId, attributes: { name: "Fact topic 2" } },
          },
        }),
        200,
      );
    });
    assert.equal(updated.length, 1);
    assertFact(updated[0], {
      type: "catalog.event-topic.updated",
      actor: admin,
      resource: { type: "event-topic", id: topicId },
    });
    assert.equal(updated[0].data.name, "Fact topic 2");
  });

  await t.step("event created: one event fact and one owner-role fact", async () => {
    const facts = await factsOf(system, async () => {
      eventId = (await system.createEvent(alice.token)).id;
    });
    const events = facts.filter((f) => f.type === "catalog.event.created");
    assert.equal(events.length, 1);
    assertFact(events[0], {
      type: "catalog.event.created",
      actor: alice,
      resource: { type: "event", id: eventId },
    });
    const others = facts.filter((f) => f.type !== "catalog.event.created");
    assert.equal(others.length, 1);
    assert.equal(others[0].type, "catalog.users-events-role.created");
    assert.equal(others[0].data.event, eventId);
    assert.equal(others[0].data.role, "owner");
  });

  await t.step("event updated", async () => {
    const facts = await factsOf(system, async () => {
      expectStatus(
        await system.call("PATCH", `/v1/events/${eventId}`, {
          token: alice.token,
          body: { data: { type: "event", id: eventId, attributes: { state: "published" } } },
        }),
        200,
      );
    });
    assert.equal(facts.length, 1);
    assertFact(facts[0], {
      type: "catalog.event.updated",
      actor: alice,
      resource: { type: "event", id: eventId },
    });
    assert.equal(facts[0].data.state, "published");
  });

  await t.step("ticket created, updated, deleted", async () => {
    const created = await factsOf(system, async () => {
      ticketId = await system.createTicket(alice.token, eventId, { price: 12 });
    });
    assert.equal(created.length, 1);
    assertFact(created[0], {
      type: "catalog.ticket.created",
      actor: alice,
      resource: { type: "ticket", id: ticketId },
    });
    const updated = await factsOf(system, async () => {
      expectStatus(
        await system.call("PATCH", `/v1/tickets/${ticketId}`, {
          token: alice.token,
          body: { data: { type: "ticket", id: ticketId, attributes: { quantity: 3 } } },
        }),
        200,
      );
    });
    assert.equal(updated.length, 1);
    assert.equal(updated[0].type, "catalog.ticket.updated");
    assert.equal(updated[0].data.quantity, 3);
    const deleted = await factsOf(system, async () => {
      expectStatus(
        await system.call("DELETE", `/v1/tickets/${ticketId}`, { token: alice.token }),
        200,
      );
    });
    assert.equal(deleted.length, 1);
    assertFact(deleted[0], {
      type: "catalog.ticket.deleted",
      actor: alice,
      resource: { type: "ticket", id: ticketId },
    });
    assert.equal(deleted[0].purged, undefined, "a soft delete can be undone: not purged");
  });

  await t.step("role granted and revoked", async () => {
    const bob = await system.signUp();
    let grantId = "";
    const granted = await factsOf(system, async () => {
      grantId = await system.grantRole(alice.token, {
        userId: bob.id,
        eventId,
        role: "coorganizer",
      });
    });
    assert.equal(granted.length, 1);
    assertFact(granted[0], {
      type: "catalog.users-events-role.created",
      actor: alice,
      resource: { type: "users-events-role", id: grantId },
    });
    const revoked = await factsOf(system, async () => {
      expectStatus(
        await system.call("DELETE", `/v1/users-events-roles/${grantId}`, { token: alice.token }),
        200,
      );
    });
    assert.equal(revoked.length, 1);
    assertFact(revoked[0], {
      type: "catalog.users-events-role.deleted",
      actor: alice,
      resource: { type: "users-events-role", id: grantId },
    });
    assert.equal(revoked[0].purged, true, "roles have no trash");
  });

  await t.step("event and topic deleted", async () => {
    const event = await factsOf(system, async () => {
      expectStatus(
        await system.call("DELETE", `/v1/events/${eventId}`, { token: alice.token }),
        200,
      );
    });
    assert.equal(event.length, 1);
    assertFact(event[0], {
      type: "catalog.event.deleted",
      actor: alice,
      resource: { type: "event", id: eventId },
    });
    const topic = await factsOf(system, async () => {
      expectStatus(
        await system.call("DELETE", `/v1/event-topics/${topicId}`, { token: admin.token }),
        200,
      );
    });
    assert.equal(topic.length, 1);
    assert.equal(topic[0].type, "catalog.event-topic.deleted");
  });

  await t.step("user deleted (by an admin, who is the actor)", async () => {
    const facts = await factsOf(system, async () => {
      expectStatus(
        await system.call("DELETE", `/v1/users/${alice.id}`, { token: admin.token }),
        200,
      );
    });
    assert.equal(facts.length, 1);
    assertFact(facts[0], {
      type: "catalog.user.deleted",
      actor: admin,
      resource: { type: "user", id: alice.id },
    });
  });

  await t.step("the outbox is drained and every fact id is unique", async () => {
    const all = await system.readFacts();
    const [{ count }] = await system.sql`select count(*)::int as count from outbox`;
    assert.equal(count, 0);
    assert.equal(new Set(all.map((f) => f.id)).size, all.length);
    for (const fact of all) assert.ok(fact.type.startsWith("catalog."));
  });
});

Deno.test("[catalog] a PATCH that changes nothing announces nothing", async () => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const event = await system.createEvent(user.token);
  const facts = await factsOf(system, async () => {
    // What Ember sends back after a read: the same values, read-only ones included.
    const reply = await system.call("PATCH", `/v1/events/${event.id}`, {
      token: user.token,
      body: {
        data: {
          type: "event",
          id: event.id,
          attributes: {
            name: event.resource.attributes.name,
            timezone: event.resource.attributes.timezone,
          },
        },
      },
    });
    expectStatus(reply, 200);
  });
  assert.deepEqual(facts, []);
  const changed = await factsOf(system, async () => {
    const reply = await system.call("PATCH", `/v1/events/${event.id}`, {
      token: user.token,
      body: { data: { type: "event", id: event.id, attributes: { name: "Renamed" } } },
    });
    expectStatus(reply, 200);
  });
  assert.equal(changed.length, 1, "a real change still announces itself");
});

/** `type id` of each fact, sorted: what a purge announced. */
function described(facts: TestFact[]): string[] {
  return facts.map((fact) => `${fact.type} ${(fact.data as { id: string }).id}`).sort();
}

Deno.test("[catalog] a purge announces everything that went with the row", async (t) => {
  await using system = await startTestSystem();
  const admin = system.admin.token;
  const owner = await system.signUp();
  const coOwner = await system.signUp();
  const event = await system.createEvent(owner.token);
  const ticket = await system.createTicket(owner.token, event.id);
  const grant = await system.grantRole(owner.token, {
    userId: coOwner.id,
    eventId: event.id,
    role: "owner",
  });
  const ownerGrant = await grantOf(system, owner.id, event.id);

  /** The facts of `DELETE path?permanent=true` as an admin. */
  const purged = (path: string) =>
    factsOf(system, async () => {
      expectStatus(await system.call("DELETE", `${path}?permanent=true`, { token: admin }), 200);
    });

  await t.step(
    "a user: their roles deleted, their events shown with their next owner",
    async () => {
      const facts = await purged(`/v1/users/${owner.id}`);
      assert.deepEqual(
        described(facts),
        [
          `catalog.event.updated ${event.id}`,
          `catalog.user.deleted ${owner.id}`,
          `catalog.users-events-role.deleted ${ownerGrant}`,
        ].sort(),
      );
      const updated = facts.find((fact) => fact.type === "catalog.event.updated")!;
      assert.equal((updated.data as Record<string, unknown>).owner, coOwner.id);
      for (const fact of facts) {
        assert.equal(fact.purged, fact === updated ? undefined : true, `${fact.type} purged`);
      }
    },
  );
  await t.step("an event: its tickets and roles deleted", async () => {
    const facts = await purged(`/v1/events/${event.id}`);
    for (const fact of facts) assert.equal(fact.purged, true, `${fact.type} purged`);
    assert.deepEqual(
      described(facts),
      [
        `catalog.event.deleted ${event.id}`,
        `catalog.ticket.deleted ${ticket}`,
        `catalog.users-events-role.deleted ${grant}`,
      ].sort(),
    );
  });
});

Deno.test("[catalog] concurrent DELETEs of one resource: one 200 and one fact, the rest 404", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token);
  const ticket = await system.createTicket(owner.token, event.id);
  const topic = await system.createTopic("Deleted at once");
  for (
    const [path, token, type] of [
      [`/v1/tickets/${ticket}`, owner.token, "catalog.ticket.deleted"],
      [`/v1/event-topics/${topic}`, system.admin.token, "catalog.event-topic.deleted"],
      [`/v1/events/${event.id}?permanent=true`, system.admin.token, "catalog.event.deleted"],
    ]
  ) {
    const facts = await factsOf(system, async () => {
      const replies = await Promise.all(
        Array.from({ length: 5 }, () => system.call("DELETE", path, { token })),
      );
      assert.deepEqual(replies.map((r) => r.status).sort(), [200, 404, 404, 404, 404], path);
    });
    assert.equal(facts.filter((fact) => fact.type === type).length, 1, `${path}: one fact`);
  }
});

Deno.test("[catalog] an update's fact names the public attributes it changed", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const event = await system.createEvent(user.token);
  const changedBy = async (token: string, path: string, data: Record<string, unknown>) => {
    const facts = await factsOf(system, async () => {
      expectStatus(await system.call("PATCH", path, { token, body: { data } }), 200);
    });
    assert.equal(facts.length, 1);
    return (facts[0] as unknown as Record<string, unknown>).changed;
  };
  const userPath = `/v1/users/${user.id}`;
  const eventPath = `/v1/events/${event.id}`;

  await t.step("a user made admin: is-admin", async () => {
    const data = { type: "user", id: user.id, attributes: { "is-admin": true } };
    assert.equal(await changedBy(system.admin.token, userPath, data), "is-admin");
  });
  await t.step("two attributes, comma-separated in the resource's order", async () => {
    const attributes = { "last-name": "Hopper", "first-name": "Grace" };
    const data = { type: "user", id: user.id, attributes };
    assert.equal(await changedBy(user.token, userPath, data), "first-name,last-name");
  });
  await t.step("an event published: state", async () => {
    const data = { type: "event", id: event.id, attributes: { state: "published" } };
    assert.equal(await changedBy(user.token, eventPath, data), "state");
  });
  // Found by a review: `changed` named what the HTTP resource derives from the change but the
  // fact's data does not carry (a ticket's `max-order`), so a subscriber looked for it in vain.
  await t.step("a ticket's quantity: only names its data carries", async () => {
    const ticket = await system.createTicket(user.token, event.id);
    const data = { type: "ticket", id: ticket, attributes: { quantity: 7, name: "Renamed" } };
    assert.equal(await changedBy(user.token, `/v1/tickets/${ticket}`, data), "name,quantity");
  });
  await t.step("an account promoted at start: is-admin,is-super-admin", async () => {
    const other = await system.signUp();
    const config = { ...system.config, adminEmail: other.email, adminPassword: "operator's own" };
    const facts = await factsOf(
      system,
      () => ensureFirstAdmin({ sql: system.sql, relay: system.catalog.relay, config, log: quiet }),
    );
    assert.deepEqual(facts.map((fact) => fact.type), ["catalog.user.updated"]);
    const changed = (facts[0] as unknown as Record<string, unknown>).changed;
    assert.equal(changed, "is-admin,is-super-admin");
  });
  await t.step("a create says nothing of it", async () => {
    const facts = await factsOf(system, () => system.createTopic());
    assert.equal((facts[0] as unknown as Record<string, unknown>).changed, undefined);
  });
});

// Found by a review as a subscriber: rows a write changed beyond its own said nothing of what
// changed, so `changed` absent meant either "nothing public" or "not said".
Deno.test("[catalog] a cascaded update's fact names what the write changed of it", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topic = await system.createTopic();
  const subTopic = await system.createSubTopic(topic);
  const link = (type: string, id: string) => ({ data: { type, id } });
  const both = await system.createEvent(owner.token, {
    relationships: {
      "event-topic": link("event-topic", topic),
      "event-sub-topic": link("event-sub-topic", subTopic),
    },
  });
  const topicOnly = await system.createEvent(owner.token, {
    relationships: { "event-topic": link("event-topic", topic) },
  });
  const changedOf = (facts: TestFact[], type: string, id: string) => {
    const found = facts.filter((f) => f.type === type && f.data.id === id);
    assert.equal(found.length, 1, `one ${type} for ${id}`);
    return (found[0] as unknown as Record<string, unknown>).changed;
  };
  const admin = system.admin.token;

  await t.step("a topic's soft delete: each event names the links it lost", async () => {
    const facts = await factsOf(system, async () => {
      expectStatus(await system.call("DELETE", `/v1/event-topics/${topic}`, { token: admin }), 200);
    });
    const updated = "catalog.event.updated";
    assert.equal(changedOf(facts, updated, both.id), "event-topic,event-sub-topic");
    assert.equal(changedOf(facts, updated, topicOnly.id), "event-topic");
  });

  await t.step("its restore: the sub-topic trashed with it names deleted-at", async () => {
    const facts = await factsOf(system, async () => {
      const data = { type: "event-topic", id: topic, attributes: { "deleted-at": null } };
      const path = `/v1/event-topics/${topic}?get_trashed=true`;
      expectStatus(await system.call("PATCH", path, { token: admin, body: { data } }), 200);
    });
    assert.equal(changedOf(facts, "catalog.event-sub-topic.updated", subTopic), "deleted-at");
  });

  await t.step("a sub-topic's delete: its event names event-sub-topic", async () => {
    const relink = {
      type: "event",
      id: both.id,
      relationships: {
        "event-topic": link("event-topic", topic),
        "event-sub-topic": link("event-sub-topic", subTopic),
      },
    };
    const path = `/v1/events/${both.id}`;
    expectStatus(
      await system.call("PATCH", path, { token: owner.token, body: { data: relink } }),
      200,
    );
    const facts = await factsOf(system, async () => {
      const sub = `/v1/event-sub-topics/${subTopic}`;
      expectStatus(await system.call("DELETE", sub, { token: admin }), 200);
    });
    assert.equal(changedOf(facts, "catalog.event.updated", both.id), "event-sub-topic");
  });

  await t.step("an owner's account deleted: the event names owner", async () => {
    const next = await system.signUp();
    for (const event of [both, topicOnly]) {
      await system.grantRole(owner.token, { userId: next.id, eventId: event.id, role: "owner" });
    }
    const facts = await factsOf(system, async () => {
      expectStatus(
        await system.call("DELETE", `/v1/users/${owner.id}`, { token: owner.token }),
        200,
      );
    });
    for (const event of [both, topicOnly]) {
      assert.equal(changedOf(facts, "catalog.event.updated", event.id), "owner");
    }
  });
});
