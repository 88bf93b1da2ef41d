import assert from "node:assert/strict";
import { factActor } from "@shared/facts.ts";
import { expectError, expectStatus } from "@testing/system.ts";
import { type PaymentsSystem, startPaymentsSystem } from "./_test_utils.ts";

const JSONAPI = "application/vnd.api+json";

async function linkedFlag(p: PaymentsSystem, eventId: string, want: boolean): Promise<boolean> {
  // The catalog follows payments' facts, so the flag flips a moment later. A bound, not a speed
  // target: at 1 s, a catalog consumer held back 3 s (a probe locking the event's row) failed
  // the test though the flag flipped.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const reply = await p.call("GET", `/v1/events/${eventId}`, { token: p.system.admin.token });
    const flag = reply.body?.data?.attributes?.["is-stripe-linked"];
    if (flag === want || Date.now() > deadline) return flag;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function rowCount(p: PaymentsSystem): Promise<number> {
  const [{ count }] = await p.sql`select count(*)::int as count from stripe_authorizations`;
  return count;
}

Deno.test("[payments] POST /v1/stripe-authorizations links the event for organizers and admins", async (t) => {
  await using p = await startPaymentsSystem();
  await t.step(
    "the owner: 201 with only the publishable key, and the event turns linked",
    async () => {
      const cast = await p.stripeEvent();
      const grant = p.grant();
      const reply = await p.link(cast.owner.token, cast.event.id, grant.code);
      expectStatus(reply, 201);
      assert.equal(reply.headers.get("Content-Type"), JSONAPI);
      const data = reply.body.data;
      assert.equal(data.type, "stripe-authorization");
      assert.deepEqual(data.attributes, {
        "stripe-publishable-key": grant.publishableKey,
        "deleted-at": null,
      });
      assert.deepEqual(data.relationships.event.data, { type: "event", id: cast.event.id });
      assert.equal(reply.headers.get("Location"), `/v1/stripe-authorizations/${data.id}`);
      assert.equal(reply.body.links.self, `/v1/stripe-authorizations/${data.id}`);
      assert.equal(await linkedFlag(p, cast.event.id, true), true);
      const facts = (await p.readFacts()).filter((f) => f.source === "payments");
      const fact = facts.find((f) =>
        f.type === "payments.stripe-authorization.created" && f.data.id === data.id
      );
      assert.ok(fact, "a created fact");
      assert.equal(fact.type, "payments.stripe-authorization.created");
      assert.equal(fact.data.event, cast.event.id);
      assert.equal(fact.data["stripe-publishable-key"], grant.publishableKey);
      assert.deepEqual(factActor(fact), { id: cast.owner.id, email: cast.owner.email });
    },
  );
  await t.step("an organizer", async () => {
    const cast = await p.stripeEvent();
    expectStatus(await p.link(cast.organizer.token, cast.event.id, p.grant().code), 201);
  });
  await t.step("an admin, naming the event by its identifier", async () => {
    const cast = await p.stripeEvent();
    const reply = await p.link(p.system.admin.token, cast.event.identifier, p.grant().code);
    expectStatus(reply, 201);
    assert.equal(reply.body.data.relationships.event.data.id, cast.event.id);
  });
});

Deno.test("[payments] POST /v1/stripe-authorizations refuses callers who do not organize the event", async (t) => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const cases: [string, string | undefined, number][] = [
    ["a co-organizer: 403", cast.coorganizer.token, 403],
    ["a stranger: 403", cast.stranger.token, 403],
    ["anonymous: 401", undefined, 401],
  ];
  for (const [name, token, status] of cases) {
    await t.step(name, async () => {
      expectError(await p.link(token, cast.event.id, p.grant().code), status);
    });
  }
  await t.step("an event without can-pay-by-stripe: 403, even for the owner", async () => {
    const off = await p.stripeEvent({ "can-pay-by-stripe": false });
    expectError(await p.link(off.owner.token, off.event.id, p.grant().code), 403);
    expectError(await p.link(p.system.admin.token, off.event.id, p.grant().code), 403);
  });
  await t.step("nothing reached Stripe, nothing was stored", async () => {
    assert.equal(p.stripe.calls.length, 0);
    assert.equal(await rowCount(p), 0);
  });
});

Deno.test("[payments] POST /v1/stripe-authorizations rejects bad input with a clear 4xx", async (t) => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const token = cast.owner.token;
  const post = (data: unknown) =>
    p.call("POST", "/v1/stripe-authorizations", { token, body: { data } });
  const event = { data: { type: "event", id: cast.event.id } };
  await t.step("no code: 422 at the attribute", async () => {
    expectError(
      await post({ type: "stripe-authorization", relationships: { event } }),
      422,
      { pointer: "/data/attributes/stripe-auth-code" },
    );
  });
  await t.step("an empty or blank code: 422", async () => {
    for (const code of ["", "   "]) {
      expectError(
        await post({
          type: "stripe-authorization",
          attributes: { "stripe-auth-code": code },
          relationships: { event },
        }),
        422,
        { pointer: "/data/attributes/stripe-auth-code" },
      );
    }
  });
  await t.step("a code that is not a string: 422", async () => {
    expectError(
      await post({
        type: "stripe-authorization",
        attributes: { "stripe-auth-code": 42 },
        relationships: { event },
      }),
      422,
      { pointer: "/data/attributes/stripe-auth-code" },
    );
  });
  await t.step("no event relationship: 422", async () => {
    expectError(
      await post({ type: "stripe-authorization", attributes: { "stripe-auth-code": "ac_x" } }),
      422,
      { pointer: "/data/relationships/event" },
    );
  });
  await t.step("a relationship of the wrong type: 409", async () => {
    expectError(
      await post({
        type: "stripe-authorization",
        attributes: { "stripe-auth-code": "ac_x" },
        relationships: { event: { data: { type: "ticket", id: cast.event.id } } },
      }),
      409,
      { pointer: "/data/relationships/event/data/type" },
    );
  });
  await t.step("a resource of the wrong type: 409", async () => {
    expectError(await post({ type: "discount-code", attributes: {} }), 409);
  });
  await t.step("an event that does not exist: 422", async () => {
    expectError(await p.link(token, "999999", p.grant().code), 422, {
      pointer: "/data/relationships/event",
    });
  });
  await t.step("a deleted event: 422", async () => {
    const gone = await p.stripeEvent();
    expectStatus(
      await p.call("DELETE", `/v1/events/${gone.event.id}`, { token: gone.owner.token }),
      200,
    );
    expectError(await p.link(gone.owner.token, gone.event.id, p.grant().code), 422, {
      pointer: "/data/relationships/event",
    });
  });
  await t.step("a body that is not JSON: 400", async () => {
    expectError(await p.call("POST", "/v1/stripe-authorizations", { token, body: "{" }), 400);
  });
  assert.equal(await rowCount(p), 0);
});

Deno.test("[payments] POST /v1/stripe-authorizations allows one authorization per event (409)", async (t) => {
  await using p = await startPaymentsSystem();
  await t.step("a second link of the same event: 409, its code never sent to Stripe", async () => {
    const cast = await p.stripeEvent();
    expectStatus(await p.link(cast.owner.token, cast.event.id, p.grant().code), 201);
    const calls = p.stripe.calls.length;
    expectError(await p.link(cast.owner.token, cast.event.id, p.grant().code), 409);
    assert.equal(p.stripe.calls.length, calls);
  });
  await t.step("two links at once: exactly one 201, the loser's code never spent", async () => {
    const cast = await p.stripeEvent();
    const grants = [p.grant({ delayMs: 100 }), p.grant({ delayMs: 100 })];
    const calls = p.stripe.calls.length;
    const replies = await Promise.all(
      grants.map((grant) => p.link(cast.owner.token, cast.event.id, grant.code)),
    );
    assert.deepEqual(replies.map((r) => r.status).sort(), [201, 409]);
    const [{ count }] = await p.sql`select count(*)::int as count from stripe_authorizations
      where event_id = ${cast.event.id}`;
    assert.equal(count, 1);
    // Links hold the accounts lock: the loser finds the winner's row and answers 409 before it
    // exchanges its code, so no account is connected that would need releasing. (This step used
    // to check the loser's account was released, which held whether or not it ever connected: a
    // test review.)
    const loser = grants[replies.findIndex((r) => r.status === 409)];
    const winner = grants[replies.findIndex((r) => r.status === 201)];
    await p.payments.idle();
    assert.deepEqual(
      p.stripe.calls.slice(calls).map((call) =>
        `${call.path} ${call.form.code ?? call.form.stripe_user_id}`
      ),
      [`/oauth/token ${winner.code}`],
      "only the winner's code was exchanged, nothing deauthorized",
    );
    assert.ok(!p.stripe.connected.has(loser.accountId));
    assert.ok(p.stripe.connected.has(winner.accountId));
  });
  await t.step("the database refuses a second row for an event by itself", async () => {
    const [row] = await p.sql`select * from stripe_authorizations limit 1`;
    await assert.rejects(
      () =>
        p.sql`insert into stripe_authorizations
          (event_id, stripe_publishable_key, access_token, stripe_user_id, account_lookup)
          values (${row.event_id}, 'pk', ${row.access_token}, ${row.stripe_user_id}, 'x')`,
      (error: { code?: string }) => error.code === "23505",
    );
  });
});

Deno.test("[payments] POST /v1/stripe-authorizations reports Stripe's failures and stores nothing", async (t) => {
  await using p = await startPaymentsSystem({ env: { STRIPE_TIMEOUT_MS: "300" } });
  const cast = await p.stripeEvent();
  await t.step(
    "a code Stripe refuses: 422 with Stripe's description, the code blanked",
    async () => {
      const code = `ac_unknown_${crypto.randomUUID()}`;
      const reply = await p.link(cast.owner.token, cast.event.id, code);
      expectError(reply, 422, { pointer: "/data/attributes/stripe-auth-code" });
      assert.equal(
        reply.body.errors[0].detail,
        "Cannot link Stripe: Authorization code does not exist: [redacted]",
      );
      assert.ok(!reply.text.includes(code));
    },
  );
  await t.step("a code used before: 422 with Stripe's description", async () => {
    const grant = p.grant();
    const other = await p.stripeEvent();
    expectStatus(await p.link(other.owner.token, other.event.id, grant.code), 201);
    const reply = await p.link(cast.owner.token, cast.event.id, grant.code);
    expectError(reply, 422);
    assert.match(reply.body.errors[0].detail, /already been used/);
  });
  await t.step("Stripe slower than STRIPE_TIMEOUT_MS: 504 in bounded time", async () => {
    const began = performance.now();
    const reply = await p.link(cast.owner.token, cast.event.id, p.grant({ delayMs: 3000 }).code);
    expectError(reply, 504);
    assert.ok(performance.now() - began < 2000);
  });
  await t.step("Stripe unreachable: 502", async () => {
    await p.stripe.stop();
    expectError(await p.link(cast.owner.token, cast.event.id, "ac_any_0123456789"), 502);
  });
  await t.step("none of it stored anything for the event", async () => {
    const [{ count }] = await p.sql`select count(*)::int as count from stripe_authorizations
      where event_id = ${cast.event.id}`;
    assert.equal(count, 0);
    assert.equal(await linkedFlag(p, cast.event.id, false), false);
  });
});

Deno.test("[payments] POST /v1/stripe-authorizations answers 503 when Stripe is not configured", async (t) => {
  await t.step("no platform keys", async () => {
    await using p = await startPaymentsSystem({ omit: ["stripe"] });
    const cast = await p.stripeEvent();
    expectError(await p.link(cast.owner.token, cast.event.id, p.grant().code), 503);
  });
  await t.step("no encryption key", async () => {
    await using p = await startPaymentsSystem({ omit: ["encryptionKey"] });
    const cast = await p.stripeEvent();
    expectError(await p.link(cast.owner.token, cast.event.id, p.grant().code), 503);
    assert.equal(p.stripe.calls.length, 0);
  });
});

Deno.test("[payments] GET /v1/stripe-authorizations/{id} and its event, for organizers only", async (t) => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const grant = p.grant();
  const created = await p.link(cast.owner.token, cast.event.id, grant.code);
  expectStatus(created, 201);
  const id = created.body.data.id;
  const paths = [
    `/v1/stripe-authorizations/${id}`,
    `/v1/stripe-authorizations/${id}/event`,
    `/v1/stripe-authorizations/${id}/relationships/event`,
    `/v1/events/${cast.event.id}/stripe-authorization`,
    `/v1/events/${cast.event.id}/relationships/stripe-authorization`,
  ];
  const allowed: [string, string][] = [
    ["owner", cast.owner.token],
    ["organizer", cast.organizer.token],
    ["admin", p.system.admin.token],
  ];
  for (const [who, token] of allowed) {
    await t.step(`${who}: 200 on every read route`, async () => {
      for (const path of paths) expectStatus(await p.call("GET", path, { token }), 200, path);
    });
  }
  const refused: [string, string | undefined, number][] = [
    ["co-organizer", cast.coorganizer.token, 403],
    ["stranger", cast.stranger.token, 403],
    ["anonymous", undefined, 401],
  ];
  for (const [who, token, status] of refused) {
    await t.step(`${who}: ${status} on every read route`, async () => {
      for (const path of paths) expectError(await p.call("GET", path, { token }), status, {}, path);
    });
  }
  const token = cast.owner.token;
  await t.step("the documents", async () => {
    const one = await p.call("GET", `/v1/stripe-authorizations/${id}`, { token });
    assert.deepEqual(one.body.data.attributes, {
      "stripe-publishable-key": grant.publishableKey,
      "deleted-at": null,
    });
    assert.deepEqual(one.body.data.relationships.event.links, {
      self: `/v1/stripe-authorizations/${id}/relationships/event`,
      related: `/v1/stripe-authorizations/${id}/event`,
    });
    const event = await p.call("GET", `/v1/stripe-authorizations/${id}/event`, { token });
    assert.equal(event.body.data.type, "event");
    assert.equal(event.body.data.id, cast.event.id);
    const linkage = await p.call("GET", `/v1/stripe-authorizations/${id}/relationships/event`, {
      token,
    });
    assert.deepEqual(linkage.body.data, { type: "event", id: cast.event.id });
    const byEvent = await p.call(
      "GET",
      `/v1/events/${cast.event.identifier}/stripe-authorization`,
      {
        token,
      },
    );
    assert.equal(byEvent.body.data.id, id);
    const eventLinkage = await p.call(
      "GET",
      `/v1/events/${cast.event.id}/relationships/stripe-authorization`,
      { token },
    );
    assert.deepEqual(eventLinkage.body.data, { type: "stripe-authorization", id });
  });
  await t.step("include=event brings the event from the catalog", async () => {
    const reply = await p.call("GET", `/v1/stripe-authorizations/${id}?include=event`, { token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.included.map((r: { type: string; id: string }) => [r.type, r.id]), [
      ["event", cast.event.id],
    ]);
    expectError(
      await p.call("GET", `/v1/stripe-authorizations/${id}?include=tickets`, { token }),
      400,
      { parameter: "include" },
    );
  });
  await t.step("unknown ids and events without an authorization: 404", async () => {
    for (const path of ["/v1/stripe-authorizations/999999", "/v1/stripe-authorizations/abc"]) {
      expectError(await p.call("GET", path, { token }), 404, {}, path);
    }
    const bare = await p.stripeEvent();
    const mine = { token: bare.owner.token };
    expectError(await p.call("GET", `/v1/events/${bare.event.id}/stripe-authorization`, mine), 404);
    const empty = await p.call(
      "GET",
      `/v1/events/${bare.event.id}/relationships/stripe-authorization`,
      mine,
    );
    expectStatus(empty, 200);
    assert.equal(empty.body.data, null);
    expectError(await p.call("GET", "/v1/events/999999/stripe-authorization", { token }), 404);
  });
  await t.step("an authorization of a deleted event is gone too: 404", async () => {
    expectStatus(await p.call("DELETE", `/v1/events/${cast.event.id}`, { token }), 200);
    expectError(await p.call("GET", `/v1/stripe-authorizations/${id}`, { token }), 404);
    expectError(
      await p.call("GET", `/v1/events/${cast.event.id}/stripe-authorization`, { token }),
      404,
    );
  });
});

Deno.test("[payments] PATCH /v1/stripe-authorizations/{id} re-exchanges the code atomically", async (t) => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const first = p.grant();
  const created = await p.link(cast.owner.token, cast.event.id, first.code);
  expectStatus(created, 201);
  const id = created.body.data.id;
  const patch = (token: string | undefined, attributes: Record<string, unknown>, extra = {}) =>
    p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
      token,
      body: { data: { type: "stripe-authorization", id, attributes, ...extra } },
    });
  const stored = async () => (await p.sql`select * from stripe_authorizations where id = ${id}`)[0];
  let current = first.accountId;
  await t.step("co-organizer 403, stranger 403, anonymous 401", async () => {
    const code = p.grant().code;
    expectError(await patch(cast.coorganizer.token, { "stripe-auth-code": code }), 403);
    expectError(await patch(cast.stranger.token, { "stripe-auth-code": code }), 403);
    expectError(await patch(undefined, { "stripe-auth-code": code }), 401);
  });
  await t.step("a refused code: 422, the stored keys untouched", async () => {
    const before = await stored();
    expectError(await patch(cast.owner.token, { "stripe-auth-code": "ac_nope_0123456789" }), 422);
    assert.deepEqual(await stored(), before);
  });
  await t.step("a new code: 200, every key replaced, the old account released", async () => {
    const before = await stored();
    const second = p.grant();
    const reply = await patch(cast.organizer.token, { "stripe-auth-code": second.code });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["stripe-publishable-key"], second.publishableKey);
    const after = await stored();
    for (const column of ["access_token", "refresh_token", "stripe_user_id", "account_lookup"]) {
      assert.notDeepEqual(after[column], before[column], column);
    }
    await p.payments.idle(); // the release runs after the reply
    assert.ok(!p.stripe.connected.has(first.accountId), "the replaced account was deauthorized");
    assert.ok(p.stripe.connected.has(second.accountId));
    const facts = await p.readFacts();
    const fact = facts.find((f) =>
      f.type === "payments.stripe-authorization.updated" && f.data.id === id
    );
    assert.equal(fact?.data.event, cast.event.id);
    assert.equal(fact?.data["stripe-publishable-key"], second.publishableKey);
    assert.equal(fact?.changed, "stripe-publishable-key");
    assert.equal(await linkedFlag(p, cast.event.id, true), true);
    current = second.accountId;
  });
  await t.step("a new code of the same account keeps it connected", async () => {
    const calls = p.stripe.calls.length;
    const again = p.grant({ accountId: current });
    expectStatus(await patch(p.system.admin.token, { "stripe-auth-code": again.code }), 200);
    assert.ok(p.stripe.connected.has(current));
    assert.equal(p.stripe.calls.length, calls + 1, "only the token exchange");
  });
  await t.step("no code: 200 and nothing changes", async () => {
    const before = await stored();
    expectStatus(await patch(cast.owner.token, {}), 200);
    assert.deepEqual(await stored(), before);
  });
  await t.step("another event, a mismatched id, an empty code: 422, 409, 422", async () => {
    const other = await p.stripeEvent();
    expectError(
      await patch(cast.owner.token, {}, {
        relationships: { event: { data: { type: "event", id: other.event.id } } },
      }),
      422,
      { pointer: "/data/relationships/event" },
    );
    expectError(
      await p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
        token: cast.owner.token,
        body: { data: { type: "stripe-authorization", id: "1234", attributes: {} } },
      }),
      409,
    );
    expectError(await patch(cast.owner.token, { "stripe-auth-code": "" }), 422, {
      pointer: "/data/attributes/stripe-auth-code",
    });
  });
});

Deno.test("[payments] DELETE /v1/stripe-authorizations/{id} deauthorizes and deletes for real", async (t) => {
  await using p = await startPaymentsSystem();
  await t.step("co-organizer 403, stranger 403, anonymous 401", async () => {
    const cast = await p.stripeEvent();
    const created = await p.link(cast.owner.token, cast.event.id, p.grant().code);
    const path = `/v1/stripe-authorizations/${created.body.data.id}`;
    expectError(await p.call("DELETE", path, { token: cast.coorganizer.token }), 403);
    expectError(await p.call("DELETE", path, { token: cast.stranger.token }), 403);
    expectError(await p.call("DELETE", path), 401);
  });
  await t.step("the owner: 200, Stripe told, the row gone, the event unlinked", async () => {
    const cast = await p.stripeEvent();
    const grant = p.grant();
    const created = await p.link(cast.owner.token, cast.event.id, grant.code);
    const id = created.body.data.id;
    const reply = await p.call("DELETE", `/v1/stripe-authorizations/${id}`, {
      token: cast.owner.token,
    });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.meta, { message: "Object successfully deleted" });
    const [{ count }] = await p.sql`select count(*)::int as count from stripe_authorizations
      where id = ${id}`;
    assert.equal(count, 0);
    const call = p.stripe.calls.at(-1);
    assert.equal(call?.path, "/oauth/deauthorize");
    assert.equal(call?.form.stripe_user_id, grant.accountId);
    assert.ok(!p.stripe.connected.has(grant.accountId));
    assert.equal(await linkedFlag(p, cast.event.id, false), false);
    const fact = (await p.readFacts()).find((f) =>
      f.type === "payments.stripe-authorization.deleted" && f.data.id === id
    );
    assert.equal(fact?.data.event, cast.event.id);
    assert.equal(fact?.purged, true, "deleted for real: there is no trash");
    expectError(
      await p.call("GET", `/v1/stripe-authorizations/${id}`, { token: cast.owner.token }),
      404,
    );
    // The event can be linked again.
    expectStatus(await p.link(cast.owner.token, cast.event.id, p.grant().code), 201);
  });
  await t.step("an account shared with another event stays connected", async () => {
    const [a, b] = [await p.stripeEvent(), await p.stripeEvent()];
    const first = p.grant();
    const second = p.grant({ accountId: first.accountId });
    const created = await p.link(a.owner.token, a.event.id, first.code);
    expectStatus(await p.link(b.owner.token, b.event.id, second.code), 201);
    const calls = p.stripe.calls.length;
    expectStatus(
      await p.call("DELETE", `/v1/stripe-authorizations/${created.body.data.id}`, {
        token: p.system.admin.token,
      }),
      200,
    );
    assert.equal(p.stripe.calls.length, calls, "no deauthorize call");
    assert.ok(p.stripe.connected.has(first.accountId));
  });
  await t.step("an account Stripe no longer knows: deleted anyway", async () => {
    const cast = await p.stripeEvent();
    const grant = p.grant();
    const created = await p.link(cast.owner.token, cast.event.id, grant.code);
    p.stripe.connected.delete(grant.accountId);
    const path = `/v1/stripe-authorizations/${created.body.data.id}`;
    expectStatus(await p.call("DELETE", path, { token: cast.owner.token }), 200);
    // Stripe was asked and refused: the authorization went all the same.
    const call = p.stripe.calls.at(-1);
    assert.equal(call?.path, "/oauth/deauthorize");
    assert.equal(call?.form.stripe_user_id, grant.accountId);
    expectError(await p.call("GET", path, { token: cast.owner.token }), 404);
  });
  await t.step("Stripe unreachable: 502 and the authorization kept, to retry", async () => {
    const cast = await p.stripeEvent();
    const created = await p.link(cast.owner.token, cast.event.id, p.grant().code);
    const id = created.body.data.id;
    await p.stripe.stop();
    expectError(
      await p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token: cast.owner.token }),
      502,
    );
    const [{ count }] = await p.sql`select count(*)::int as count from stripe_authorizations
      where id = ${id}`;
    assert.equal(count, 1);
  });
});

Deno.test("[payments] the database holds the Stripe keys only encrypted", async () => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const grant = p.grant();
  expectStatus(await p.link(cast.owner.token, cast.event.id, grant.code), 201);
  const [row] = await p.sql`select *, row_to_json(stripe_authorizations)::text as everything
    from stripe_authorizations where event_id = ${cast.event.id}`;
  const raw = new TextDecoder("latin1").decode(
    Uint8Array.from([...row.access_token, ...row.refresh_token, ...row.stripe_user_id]),
  );
  for (const secret of [grant.accessToken, grant.refreshToken, grant.accountId, grant.code]) {
    assert.ok(!row.everything.includes(secret), "not in the row as text");
    assert.ok(!raw.includes(secret), "not in the sealed bytes");
  }
  // Only the publishable key is stored in clear.
  assert.ok(row.everything.includes(grant.publishableKey));
  const outbox = await p.sql`select payload::text as payload from outbox`;
  for (const { payload } of outbox) assert.ok(!payload.includes(grant.accessToken));
});

Deno.test("[payments] PATCH answers before the replaced account is released", async (t) => {
  await using p = await startPaymentsSystem({ env: { STRIPE_TIMEOUT_MS: "1000" } });
  // Each deauthorization takes most of STRIPE_TIMEOUT_MS: awaited after an exchange, the two
  // calls together would outlast it.
  p.stripe.deauthorizeDelayMs = 700;
  await t.step("PATCH: 200 at once, the old account released afterwards", async () => {
    const cast = await p.stripeEvent();
    const first = p.grant();
    const created = await p.link(cast.owner.token, cast.event.id, first.code);
    expectStatus(created, 201);
    const id = created.body.data.id;
    const reply = await p.relink(cast.owner.token, id, p.grant().code);
    expectStatus(reply, 200);
    // The fake Stripe drops the account only when a release has run (after its delay): still
    // connected when the reply is here means the reply did not wait for the release.
    assert.ok(
      p.stripe.connected.has(first.accountId),
      "already released when the reply came: the reply waited for the release",
    );
    await p.payments.idle();
    assert.ok(!p.stripe.connected.has(first.accountId), "the replaced account was released");
  });
  await t.step("a release that fails is logged without secrets, never answered", async () => {
    const cast = await p.stripeEvent();
    const first = p.grant();
    const created = await p.link(cast.owner.token, cast.event.id, first.code);
    const id = created.body.data.id;
    // Stripe forgets the account: the release is refused after the reply.
    p.stripe.connected.delete(first.accountId);
    const reply = await p.relink(cast.owner.token, id, p.grant().code);
    expectStatus(reply, 200);
    await p.payments.idle();
    assert.ok(p.logs.some((line) => line.includes("cannot deauthorize an unused Stripe account")));
    // The leak check on disposal covers the log lines.
  });
});

Deno.test("[payments] two concurrent PATCHes: one 200, one 409, one account left connected", async () => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const first = p.grant();
  const created = await p.link(cast.owner.token, cast.event.id, first.code);
  expectStatus(created, 201);
  const id = created.body.data.id;
  // Both read the row, then both wait on Stripe, then both write.
  const grants = [p.grant({ delayMs: 150 }), p.grant({ delayMs: 150 })];
  const replies = await Promise.all(
    grants.map((grant) => p.relink(cast.owner.token, id, grant.code)),
  );
  assert.deepEqual(replies.map((r) => r.status).sort(), [200, 409]);
  const loser = replies.find((r) => r.status === 409)!;
  expectError(loser, 409);
  assert.match(loser.body.errors[0].detail, /changed at the same time/);
  const winner = grants[replies.findIndex((r) => r.status === 200)];
  await p.payments.idle();
  const accounts = [first, ...grants].map((g) => g.accountId);
  assert.deepEqual(accounts.filter((a) => p.stripe.connected.has(a)), [winner.accountId]);
  const [row] = await p.sql`select stripe_publishable_key from stripe_authorizations
    where id = ${id}`;
  assert.equal(row.stripe_publishable_key, winner.publishableKey);
  const updates = (await p.readFacts()).filter((f) =>
    f.type === "payments.stripe-authorization.updated" && f.data.id === id
  );
  assert.equal(updates.length, 1, "only the winner announced a change");
});

Deno.test("[payments] a changed PAYMENTS_ENCRYPTION_KEY answers 503 on DELETE and PATCH", async () => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const created = await p.link(cast.owner.token, cast.event.id, p.grant().code);
  expectStatus(created, 201);
  const id = created.body.data.id;
  const otherKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  await p.restartPayments({ paymentsEncryptionKey: otherKey });
  const calls = p.stripe.calls.length;
  const logged = p.logs.length;
  const message = "Cannot read the stored Stripe keys: PAYMENTS_ENCRYPTION_KEY does not match";
  const token = cast.owner.token;
  const del = await p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token });
  expectError(del, 503);
  assert.equal(del.body.errors[0].detail, message);
  const patch = await p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
    token,
    body: {
      data: {
        type: "stripe-authorization",
        id,
        attributes: { "stripe-auth-code": p.grant().code },
      },
    },
  });
  expectError(patch, 503);
  assert.equal(patch.body.errors[0].detail, message);
  assert.equal(p.stripe.calls.length, calls, "no code was spent, nothing deauthorized");
  const errors = p.logs.slice(logged).filter((line) => JSON.parse(line).level === "error");
  assert.equal(errors.length, 2, "one error line per request");
  for (const line of errors) assert.ok(line.includes(message));
  const [{ count }] = await p.sql`select count(*)::int as count from stripe_authorizations
    where id = ${id}`;
  assert.equal(count, 1, "the authorization is kept for the right key");
});

Deno.test("[payments] PATCH may name its own event by identifier; another event stays a 422", async () => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  const other = await p.stripeEvent();
  const created = await p.link(cast.owner.token, cast.event.id, p.grant().code);
  expectStatus(created, 201);
  const id = created.body.data.id;
  const naming = (eventId: string) =>
    p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
      token: cast.owner.token,
      body: {
        data: {
          type: "stripe-authorization",
          id,
          relationships: { event: { data: { type: "event", id: eventId } } },
        },
      },
    });
  expectStatus(await naming(cast.event.identifier), 200);
  expectError(await naming(other.event.identifier), 422, { pointer: "/data/relationships/event" });
});
