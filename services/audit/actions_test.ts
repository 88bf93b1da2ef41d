import assert from "node:assert/strict";
import type { FactData, FactType } from "@shared/fact_catalog.ts";
import type { Fact } from "@shared/facts.ts";
import { describeActor, describeFact, type KnownUsers } from "./actions.ts";
import { makeFact } from "./_test_utils.ts";

function sentence(type: FactType, id: string, data: Record<string, unknown> = {}) {
  return describeFact(makeFact(type, { id, ...data }));
}

Deno.test("[audit] describeFact writes the original's sentences", async (t) => {
  const ada = { email: "ada@example.com" };
  const cases: [FactType, string, Record<string, unknown>, string][] = [
    // The original's templates (ACTIVITIES in its app/models/activity.py), a user filled in as
    // `"email" (id)` and a role by its title, as its record_activity did.
    ["catalog.event.updated", "5", { name: "X" }, "Event 5 updated"],
    ["catalog.event.created", "5", {}, "Event 5 created"],
    ["catalog.event.deleted", "5", {}, "Event 5 deleted"],
    ["catalog.user.created", "4", ada, 'User "ada@example.com" (4) created'],
    ["catalog.user.updated", "4", ada, 'Profile of user "ada@example.com" (4) updated'],
    // Its login template also names the IP, browser and platform, which we never collect.
    ["catalog.user.logged-in", "4", ada, 'User "ada@example.com" (4) login'],
    [
      "catalog.users-events-role.created",
      "11",
      { role: "organizer", user: "7", event: "3" },
      'Role "Organizer" created for user 7 in event 3',
    ],
    [
      "catalog.users-events-role.updated",
      "11",
      { role: "coorganizer", user: "7", event: "3" },
      'Role updated to "Co-organizer" for user 7 in event 3',
    ],
    [
      "catalog.users-events-role.deleted",
      "11",
      { role: "owner", user: "7", event: "3" },
      'User 7 removed from role "Owner" in event 3',
    ],
    // Ours: the original had no sentence for these.
    ["catalog.user.deleted", "4", ada, "User 4 deleted"],
    ["catalog.ticket.created", "9", { event: "3" }, "Ticket 9 created for event 3"],
    ["catalog.event-topic.deleted", "2", {}, "Event topic 2 deleted"],
    [
      "catalog.event-sub-topic.created",
      "6",
      { "event-topic": "2" },
      "Event sub-topic 6 created for event topic 2",
    ],
    [
      "discounts.discount-code.created",
      "8",
      { code: "SUMMER", event: "3" },
      "Discount code SUMMER created for event 3",
    ],
    [
      "discounts.discount-code.updated",
      "8",
      { code: "ALL", event: null },
      "Discount code ALL updated",
    ],
    [
      "discounts.discount-code.created",
      "9",
      { code: "EVT", event: null, events: ["3", "4"] },
      "Discount code EVT created for events 3, 4",
    ],
    [
      "discounts.discount-code.updated",
      "9",
      { code: "EVT", event: null, events: ["1", "2", "3", "4", "5", "6", "7"] },
      "Discount code EVT updated for events 1, 2, 3, 4, 5 and 2 more",
    ],
    [
      "discounts.discount-code.reserved",
      "8",
      {
        code: "SUMMER",
        event: "3",
        reservation: { "order-id": "o1", quantity: 2, state: "reserved" },
      },
      "Discount code SUMMER reserved (2 uses) for event 3",
    ],
    [
      "payments.stripe-authorization.created",
      "1",
      { event: "3" },
      "Stripe authorization linked for event 3",
    ],
    [
      "payments.stripe-authorization.updated",
      "1",
      { event: "3" },
      "Stripe authorization re-linked for event 3",
    ],
    [
      "payments.stripe-authorization.deleted",
      "1",
      { event: "3" },
      "Stripe authorization removed for event 3",
    ],
  ];
  for (const [type, id, data, expected] of cases) {
    await t.step(type, () => assert.equal(sentence(type, id, data), expected));
  }
});

Deno.test("[audit] describeFact reads what an update changed (`changed`)", async (t) => {
  const changed = <K extends FactType>(type: K, data: Partial<FactData<K>>, names?: string) =>
    describeFact(
      { ...makeFact(type, data), ...(names === undefined ? {} : { changed: names }) } as Fact,
    );
  const ada = { id: "4", email: "ada@example.com" };
  await t.step("admin rights given and taken: the original's system_admin template", () => {
    const user = "catalog.user.updated";
    const made = { ...ada, "is-admin": true };
    const unmade = { ...ada, "is-admin": false };
    assert.equal(
      changed(user, made, "is-admin"),
      'User "ada@example.com" (4) Assigned system admin',
    );
    assert.equal(
      changed(user, unmade, "first-name,is-admin"),
      'User "ada@example.com" (4) Unassigned system admin',
    );
    // Ours, in the same form: the original had no super admin.
    assert.equal(
      changed(user, { ...ada, "is-super-admin": true }, "is-super-admin"),
      'User "ada@example.com" (4) Assigned super admin',
    );
    // Found by a review: one PATCH that gave both rights read "Assigned system admin" only, and
    // the super admin right, the one that can grant every other, was in no activity.
    assert.equal(
      changed(user, { ...made, "is-super-admin": true }, "is-admin,is-super-admin"),
      'User "ada@example.com" (4) Assigned system admin; ' +
        'User "ada@example.com" (4) Assigned super admin',
    );
    assert.equal(
      changed(user, { ...unmade, "is-super-admin": false }, "is-super-admin,is-admin"),
      'User "ada@example.com" (4) Unassigned system admin; ' +
        'User "ada@example.com" (4) Unassigned super admin',
    );
    assert.equal(
      changed(user, made, "first-name"),
      'Profile of user "ada@example.com" (4) updated',
    );
    assert.equal(changed(user, made), 'Profile of user "ada@example.com" (4) updated');
  });
  await t.step("an event published and unpublished: the original's publish_event", () => {
    const event = "catalog.event.updated";
    assert.equal(changed(event, { id: "5", state: "published" }, "state"), "Event 5 published");
    assert.equal(changed(event, { id: "5", state: "draft" }, "name,state"), "Event 5 un-published");
    assert.equal(changed(event, { id: "5", state: "draft" }, "name"), "Event 5 updated");
    assert.equal(changed(event, { id: "5", state: "draft" }), "Event 5 updated");
  });
  await t.step("an event code that lost its last event says so", () => {
    const code = "discounts.discount-code.updated";
    const lost = { id: "9", code: "EVT", event: null, events: [] };
    assert.equal(
      changed(code, lost, "events"),
      "Discount code EVT updated: applies to no event now",
    );
    assert.equal(changed(code, lost, "value"), "Discount code EVT updated");
    assert.equal(
      changed(code, { ...lost, events: ["4"] }, "events"),
      "Discount code EVT updated for event 4",
    );
  });
});

/** Users audit knows: id -> [email, as of]. */
function known(users: Record<string, [string, string]>): KnownUsers {
  return {
    email(id, at) {
      const user = Object.hasOwn(users, id) ? users[id] : undefined;
      return user && (at === undefined || user[1] <= at) ? user[0] : undefined;
    },
  };
}

Deno.test('[audit] describeFact names a role\'s user as "email" (id) when audit knows them', async (t) => {
  const users = known({ "7": ["grace@example.com", "2030-01-01T00:00:00.000Z"] });
  const grant = (type: FactType, role: string, user: string, who?: KnownUsers, at = "2030-02-01") =>
    describeFact(
      makeFact(type, { id: "11", role, user, event: "3" } as never, { time: new Date(at) }),
      who,
    );
  await t.step("known: the original's create_role, update_role and delete_role filled in", () => {
    assert.equal(
      grant("catalog.users-events-role.created", "organizer", "7", users),
      'Role "Organizer" created for user "grace@example.com" (7) in event 3',
    );
    assert.equal(
      grant("catalog.users-events-role.updated", "coorganizer", "7", users),
      'Role updated to "Co-organizer" for user "grace@example.com" (7) in event 3',
    );
    assert.equal(
      grant("catalog.users-events-role.deleted", "owner", "7", users),
      'User "grace@example.com" (7) removed from role "Owner" in event 3',
    );
  });
  await t.step("unknown (a fact before audit saw the user): by id, as before", () => {
    assert.equal(
      grant("catalog.users-events-role.created", "organizer", "8", users),
      'Role "Organizer" created for user 8 in event 3',
    );
    assert.equal(
      grant("catalog.users-events-role.deleted", "owner", "7"),
      'User 7 removed from role "Owner" in event 3',
    );
  });
  await t.step(
    "known only as of after the fact (batches out of order): by id, as the actor",
    () => {
      // Grace's address dates from 2030-01-01; a grant of 2029 did not name it.
      assert.equal(
        grant("catalog.users-events-role.created", "organizer", "7", users, "2029-12-31"),
        'Role "Organizer" created for user 7 in event 3',
      );
    },
  );
});

Deno.test("[audit] describeFact reads an email change as the original's update_user_email", async (t) => {
  const at = "2030-05-01T09:00:00.000Z";
  const update = (changed: string | undefined, who?: KnownUsers, data = {}) =>
    describeFact(
      {
        ...makeFact("catalog.user.updated", { id: "4", email: "new@example.com", ...data }, {
          time: new Date(at),
        }),
        ...(changed === undefined ? {} : { changed }),
      } as Fact,
      who,
    );
  const before = known({ "4": ["old@example.com", "2030-04-01T00:00:00.000Z"] });
  await t.step("the old address known: from .. to ..", () => {
    assert.equal(
      update("email", before),
      "User 4 email changed from old@example.com to new@example.com",
    );
    assert.equal(
      update("first-name,email", before),
      "User 4 email changed from old@example.com to new@example.com",
    );
  });
  await t.step("the old address unknown: the new one alone", () => {
    assert.equal(update("email"), "User 4 email changed to new@example.com");
    // What audit knows is newer than the change (another instance went ahead): not its old one.
    const later = known({ "4": ["newer@example.com", "2030-06-01T00:00:00.000Z"] });
    assert.equal(update("email", later), "User 4 email changed to new@example.com");
  });
  await t.step("with an admin right changed too: both sentences", () => {
    assert.equal(
      update("email,is-admin", before, { "is-admin": true }),
      "User 4 email changed from old@example.com to new@example.com; " +
        'User "new@example.com" (4) Assigned system admin',
    );
  });
  await t.step("a fact that does not say what changed: audit's last address decides", () => {
    assert.equal(
      update(undefined, before),
      "User 4 email changed from old@example.com to new@example.com",
    );
    const same = known({ "4": ["new@example.com", "2030-04-01T00:00:00.000Z"] });
    assert.equal(update(undefined, same), 'Profile of user "new@example.com" (4) updated');
    assert.equal(update(undefined), 'Profile of user "new@example.com" (4) updated');
  });
  await t.step("other changes stay a profile update", () => {
    assert.equal(update("first-name", before), 'Profile of user "new@example.com" (4) updated');
  });
});

Deno.test("[audit] describeFact falls back to a readable sentence for types it has none for", () => {
  // A type registered after this audit build: only the envelope and `data.id` are known.
  const later = (type: string, data: Record<string, unknown>) =>
    ({ ...makeFact(), type, data: { id: "3", ...data } }) as unknown as Fact;
  assert.equal(
    describeFact(later("catalog.speaker-call.opened", { event: "2" })),
    "Speaker call 3 opened for event 2",
  );
  assert.equal(describeFact(later("catalog.role-grant.timed-out", {})), "Role grant 3 timed out");
});

Deno.test("[audit] a purge reads apart from a soft delete; a revoked role reads as before", () => {
  const purged = <K extends FactType>(type: K, data: Partial<FactData<K>>) =>
    ({ ...makeFact(type, data), purged: true }) as Fact;
  assert.equal(describeFact(makeFact("catalog.event.deleted", { id: "2" })), "Event 2 deleted");
  assert.equal(
    describeFact(purged("catalog.event.deleted", { id: "2" })),
    "Event 2 deleted permanently",
  );
  assert.equal(
    describeFact(
      purged("discounts.discount-code.deleted", { id: "4", code: "SUMMER", event: "3" }),
    ),
    "Discount code SUMMER deleted permanently for event 3",
  );
  assert.equal(
    describeFact(purged("catalog.users-events-role.deleted", {
      id: "9",
      role: "owner",
      user: "5",
      event: "3",
    })),
    'User 5 removed from role "Owner" in event 3',
  );
});

Deno.test("[audit] a restore from the trash reads as one, not as an update", () => {
  const updated = <K extends FactType>(type: K, data: Partial<FactData<K>>, changed: string) =>
    ({ ...makeFact(type, data), changed }) as Fact;
  assert.equal(
    describeFact(
      updated("catalog.event-topic.updated", { id: "2", "deleted-at": null }, "deleted-at"),
    ),
    "Event topic 2 restored",
  );
  assert.equal(
    describeFact(
      updated(
        "catalog.ticket.updated",
        { id: "7", event: "3", "deleted-at": null },
        "name,deleted-at",
      ),
    ),
    "Ticket 7 restored for event 3",
  );
  // Moved to the trash by an update, or an update of something else: as before.
  const trashed = "2030-01-01T00:00:00.000Z";
  assert.equal(
    describeFact(
      updated("catalog.event-topic.updated", { id: "2", "deleted-at": trashed }, "deleted-at"),
    ),
    "Event topic 2 updated",
  );
  assert.equal(
    describeFact(updated("catalog.event-topic.updated", { id: "2", "deleted-at": null }, "name")),
    "Event topic 2 updated",
  );
});

Deno.test("[audit] describeFact drops control characters and bounds the length", () => {
  const text = sentence("discounts.discount-code.created", "1", {
    code: `A\u0000B${"x".repeat(900)}`,
  });
  assert.ok(!text.includes("\u0000"));
  assert.ok(text.length <= 500);
});

Deno.test("[audit] describeActor names the user as email (id), or system", () => {
  assert.equal(
    describeActor(makeFact(undefined, {}, { actor: { id: "4", email: "p@example.com" } })),
    "p@example.com (4)",
  );
  assert.equal(describeActor(makeFact(undefined, {}, { actor: null })), "system");
});
