import assert from "node:assert/strict";
import { describeActor, describeFact } from "./actions.ts";
import { makeFact } from "./_test_utils.ts";

function sentence(type: string, verb: string, id: string, data: Record<string, unknown> = {}) {
  return describeFact(makeFact({ type, verb, resource: { type, id }, data }));
}

Deno.test("[audit] describeFact writes the original's sentences", async (t) => {
  const cases: [string, string, string, Record<string, unknown>, string][] = [
    ["event", "updated", "5", { name: "X" }, "Event 5 updated"],
    ["event", "created", "5", {}, "Event 5 created"],
    ["user", "logged-in", "4", { email: "a@b.c" }, "User 4 logged in"],
    ["user", "created", "4", {}, "User 4 created"],
    ["ticket", "created", "9", { event_id: 3 }, "Ticket 9 created for event 3"],
    ["event-topic", "deleted", "2", {}, "Event topic 2 deleted"],
    [
      "event-sub-topic",
      "created",
      "6",
      { event_topic_id: 2 },
      "Event sub-topic 6 created for event topic 2",
    ],
    [
      "users-events-role",
      "created",
      "11",
      { role_name: "organizer", user_id: 7, event_id: 3 },
      "Role organizer granted to user 7 for event 3",
    ],
    [
      "users-events-role",
      "updated",
      "11",
      { role_name: "coorganizer", user_id: 7, event_id: 3 },
      "Role of user 7 for event 3 changed to coorganizer",
    ],
    [
      "users-events-role",
      "deleted",
      "11",
      { role_name: "organizer", user_id: 7, event_id: 3 },
      "Role organizer revoked from user 7 for event 3",
    ],
    [
      "discount-code",
      "created",
      "8",
      { code: "SUMMER", event_id: 3 },
      "Discount code SUMMER created for event 3",
    ],
    ["discount-code", "updated", "8", { code: "ALL", event_id: null }, "Discount code ALL updated"],
    [
      "discount-code",
      "reserved",
      "8",
      { code: "SUMMER", event_id: "3", quantity: 2 },
      "Discount code SUMMER reserved (2 uses) for event 3",
    ],
    [
      "stripe-authorization",
      "created",
      "1",
      { event_id: 3 },
      "Stripe authorization linked for event 3",
    ],
    [
      "stripe-authorization",
      "updated",
      "1",
      { event_id: 3 },
      "Stripe authorization re-linked for event 3",
    ],
    [
      "stripe-authorization",
      "deleted",
      "1",
      { event_id: 3 },
      "Stripe authorization removed for event 3",
    ],
  ];
  for (const [type, verb, id, data, expected] of cases) {
    await t.step(`${type} ${verb}`, () => assert.equal(sentence(type, verb, id, data), expected));
  }
});

Deno.test("[audit] describeFact falls back to a readable sentence for unknown facts", () => {
  assert.equal(
    sentence("speaker-call", "opened", "3", { event_id: 2 }),
    "Speaker call 3 opened for event 2",
  );
  assert.equal(sentence("role-grant", "timed-out", "x", {}), "Role grant x timed out");
  // A grant without the names it needs still says what happened.
  assert.equal(sentence("users-events-role", "created", "4", {}), "Users events role 4 created");
});

Deno.test("[audit] describeFact drops control characters and bounds the length", () => {
  const text = sentence("discount-code", "created", "1", { code: `A\u0000B${"x".repeat(900)}` });
  assert.ok(!text.includes("\u0000"));
  assert.ok(text.length <= 500);
});

Deno.test("[audit] describeActor names the user as email (id), or system", () => {
  assert.equal(
    describeActor(makeFact({ actor: { id: "4", email: "p@example.com" } })),
    "p@example.com (4)",
  );
  assert.equal(describeActor(makeFact({ actor: null })), "system");
});
