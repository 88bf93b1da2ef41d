import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { type PaymentsSystem, startPaymentsSystem } from "./_test_utils.ts";

/** An event linked to Stripe by its owner: the path of its authorization's event. */
async function linkedEvent(p: PaymentsSystem) {
  const cast = await p.stripeEvent();
  const created = await p.link(cast.owner.token, cast.event.id, p.grant().code);
  expectStatus(created, 201);
  const path = `/v1/stripe-authorizations/${created.body.data.id}/event`;
  return { created, path, token: cast.owner.token };
}

Deno.test("[payments] GET /v1/stripe-authorizations/{id}/event honours include", async (t) => {
  await using p = await startPaymentsSystem();
  const { created, path, token } = await linkedEvent(p);

  await t.step("include=owner,stripe-authorization: the catalog's and payments' own", async () => {
    const reply = await p.call("GET", `${path}?include=owner,stripe-authorization`, { token });
    expectStatus(reply, 200);
    const types = reply.body.included.map((r: { type: string }) => r.type).sort();
    assert.deepEqual(types, ["stripe-authorization", "user"]);
    assert.deepEqual(reply.body.data.relationships["stripe-authorization"].data, {
      type: "stripe-authorization",
      id: created.body.data.id,
    });
  });

  await t.step(
    "include=stripe_authorization: a path in underscores, as the original took it",
    async () => {
      const reply = await p.call("GET", `${path}?include=stripe_authorization`, { token });
      expectStatus(reply, 200);
      assert.deepEqual(reply.body.included.map((r: { type: string }) => r.type), [
        "stripe-authorization",
      ]);
    },
  );

  await t.step("an unknown include path is a 400 naming the parameter", async () => {
    expectError(await p.call("GET", `${path}?include=nope`, { token }), 400, {
      parameter: "include",
    });
  });
});

Deno.test("[payments] GET /v1/stripe-authorizations/{id}/event reads fields as the event's routes do", async (t) => {
  await using p = await startPaymentsSystem();
  const { path, token } = await linkedEvent(p);

  await t.step("fields[event]=name keeps only the name (ignored before)", async () => {
    const reply = await p.call("GET", `${path}?fields[event]=name`, { token });
    expectStatus(reply, 200);
    assert.deepEqual(Object.keys(reply.body.data.attributes), ["name"]);
    assert.deepEqual(reply.body.data.relationships ?? {}, {});
  });

  await t.step("include=owner with fields[user]=first-name", async () => {
    const query = "include=owner&fields[user]=first-name";
    const reply = await p.call("GET", `${path}?${query}`, { token });
    expectStatus(reply, 200);
    const owner = reply.body.included.find((r: { type: string }) => r.type === "user");
    assert.deepEqual(Object.keys(owner.attributes), ["first-name"]);
  });

  await t.step("an unknown fieldset, field or family member is a 400 naming it", async () => {
    for (const parameter of ["fields[nope]", "fields[event]", "filter[x]", "page[offset]"]) {
      const reply = await p.call("GET", `${path}?${parameter}=nope`, { token });
      expectError(reply, 400, { parameter }, parameter);
    }
  });
});

// The original honoured `include` on relationship routes; here the paths start at the
// relationship (JSON:API's full linkage), and the event the catalog owns the gateway adds.
Deno.test("[payments] relationship routes answer what include asks for", async (t) => {
  await using p = await startPaymentsSystem();
  const { created, token } = await linkedEvent(p);
  const id = created.body.data.id;
  const eventId = created.body.data.relationships.event.data.id;

  await t.step("an authorization's event relationship includes the event", async () => {
    const path = `/v1/stripe-authorizations/${id}/relationships/event?include=event` +
      `&fields[event]=name`;
    const reply = await p.call("GET", path, { token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, { type: "event", id: eventId });
    assert.deepEqual(reply.body.included.map((r: { id: string }) => r.id), [eventId]);
    assert.deepEqual(Object.keys(reply.body.included[0].attributes), ["name"]);
  });

  await t.step("an event's authorization relationship includes it, without secrets", async () => {
    const path = `/v1/events/${eventId}/relationships/stripe-authorization` +
      `?include=stripe-authorization`;
    const reply = await p.call("GET", path, { token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, { type: "stripe-authorization", id });
    assert.deepEqual(reply.body.included.map((r: { id: string }) => r.id), [id]);
    assert.deepEqual(await p.leaks(), []);
  });

  // A client that sends one set of fieldsets with every request of an event's page: the catalog's
  // sibling routes (`relationships/tickets`) take the event's own fieldset, as the original did.
  await t.step("a fieldset of the event, the parent, is taken as on its other routes", async () => {
    for (const rel of ["tickets", "stripe-authorization"]) {
      const path = `/v1/events/${eventId}/relationships/${rel}?fields[event]=name`;
      expectStatus(await p.call("GET", path, { token }), 200, path);
    }
    const path = `/v1/events/${eventId}/relationships/stripe-authorization` +
      `?include=stripe-authorization&fields[event]=name&fields[stripe-authorization]=event`;
    const reply = await p.call("GET", path, { token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, { type: "stripe-authorization", id });
    assert.deepEqual(reply.body.included[0].attributes, {});
  });

  await t.step(
    "a fieldset may name the write-only stripe-auth-code: it shows nothing",
    async () => {
      // The original's schema declared it (load-only), so its fieldsets took it.
      for (
        const path of [
          `/v1/stripe-authorizations/${id}?fields[stripe-authorization]=stripe-auth-code`,
          `/v1/events/${eventId}?include=stripe-authorization` +
          `&fields[stripe-authorization]=stripe_auth_code`,
        ]
      ) {
        const reply = await p.call("GET", path, { token });
        expectStatus(reply, 200, path);
        const resource = reply.body.included?.[0] ?? reply.body.data;
        assert.equal(resource.type, "stripe-authorization");
        assert.deepEqual(resource.attributes ?? {}, {}, path);
      }
    },
  );

  await t.step("another path is a 400", async () => {
    const path = `/v1/events/${eventId}/relationships/stripe-authorization?include=owner`;
    expectError(await p.call("GET", path, { token }), 400, { parameter: "include" });
  });

  await t.step(
    "an unknown field of it on the event's route is a 400 (was trimmed away)",
    async () => {
      const path = `/v1/events/${eventId}?include=stripe-authorization` +
        `&fields[stripe-authorization]=bogus`;
      expectError(await p.call("GET", path, { token }), 400, {
        parameter: "fields[stripe-authorization]",
      });
    },
  );
});
