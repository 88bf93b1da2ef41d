import assert from "node:assert/strict";
import { factKinds, FACTS, type FactType } from "./fact_catalog.ts";
import { FACT_SUBJECTS, factChange, touchedChange } from "./access_facts.ts";
import { EVERY_TAG } from "./cache_tags.ts";

const fact = (type: FactType, data: Record<string, unknown> = {}) => ({
  type,
  data: { ...FACTS[type].example, ...data },
});

Deno.test("[access] factChange drops what a catalog fact can change in an access answer", async (t) => {
  await t.step("a user's facts drop their answers (not a login)", () => {
    for (const verb of ["created", "updated", "deleted"] as const) {
      assert.deepEqual(factChange(fact(`catalog.user.${verb}`, { id: "4" })), { drop: ["u:4"] });
    }
    assert.equal(factChange(fact("catalog.user.logged-in")), undefined);
  });
  await t.step("an event's facts drop it by id and by identifier", () => {
    for (const verb of ["created", "updated", "deleted"] as const) {
      assert.deepEqual(factChange(fact(`catalog.event.${verb}`, { id: "5" })), {
        drop: ["e:5", "e:a1b2c3d4"],
      });
    }
  });
  await t.step("a role's facts drop every answer of its user", () => {
    for (const verb of ["created", "updated", "deleted"] as const) {
      assert.deepEqual(factChange(fact(`catalog.users-events-role.${verb}`, { user: "4" })), {
        drop: ["u:4"],
      });
    }
  });
  await t.step("a Stripe authorization's facts settle its event", () => {
    assert.deepEqual(factChange(fact("payments.stripe-authorization.deleted", { event: "5" })), {
      drop: ["e:5"],
      settle: true,
    });
  });
  await t.step("other facts change nothing", () => {
    assert.equal(factChange(fact("catalog.ticket.updated")), undefined);
    assert.equal(factChange(fact("discounts.discount-code.created")), undefined);
  });
  await t.step("what cannot be read empties the projection", () => {
    assert.equal(factChange(null), "clear");
    assert.equal(factChange({ data: {} }), "clear");
    assert.equal(factChange({ type: "catalog.user.updated", data: {} }), "clear");
    assert.equal(factChange({ type: "catalog.event.updated", data: { id: "5" } }), "clear");
  });
});

Deno.test("[access] touchedChange reads the tags a gateway announces for a write", () => {
  assert.deepEqual(touchedChange(["user:4", "users"]), { drop: ["u:4"] });
  assert.deepEqual(touchedChange(["event:5", "events", "event:a1b2c3d4"]), {
    drop: ["e:5", "e:a1b2c3d4"],
  });
  assert.equal(touchedChange(["users-events-role:11", "users-events-roles"]), "clear");
  assert.deepEqual(
    touchedChange(["stripe-authorization:3", "stripe-authorizations", "event:5"]),
    { drop: ["e:5"], settle: true },
  );
  assert.equal(touchedChange(["ticket:9", "tickets"]), undefined);
  assert.equal(touchedChange([EVERY_TAG]), "clear", "a change too wide to name");
});

Deno.test("[access] FACT_SUBJECTS hear every fact that factChange acts on, and no other", () => {
  const heard = (subject: string) =>
    FACT_SUBJECTS.some((pattern) => subject.startsWith(pattern.slice(0, -1)));
  for (const kind of factKinds()) {
    const acts = factChange({ type: kind.type, data: kind.example }) !== undefined;
    const logIn = kind.type === "catalog.user.logged-in";
    assert.equal(heard(kind.subject), acts || logIn, kind.type);
  }
});
