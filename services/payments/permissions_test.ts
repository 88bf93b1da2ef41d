import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { linked, type PaymentsSystem, startPaymentsSystem } from "./_test_utils.ts";

// `page[offset]` is of no route here; `include=bogus` is a path of no resource.
const bad = ["include=bogus", "page[offset]=1"];

/** The reads of authorization `id` and of the Stripe link of event `eventId`, and the PATCH. */
function routes(id: string, eventId: string): [string, string][] {
  return [
    ["GET", `/v1/stripe-authorizations/${id}`],
    ["GET", `/v1/stripe-authorizations/${id}/event`],
    ["GET", `/v1/stripe-authorizations/${id}/relationships/event`],
    ["GET", `/v1/events/${eventId}/stripe-authorization`],
    ["GET", `/v1/events/${eventId}/relationships/stripe-authorization`],
    ["PATCH", `/v1/stripe-authorizations/${id}`],
  ];
}

function body(method: string, id: string) {
  return method === "PATCH" ? { data: { type: "stripe-authorization", id } } : undefined;
}

async function expectAll(
  p: PaymentsSystem,
  target: { id: string; eventId: string },
  expected: { token: string | undefined; status: number },
): Promise<void> {
  for (const [method, path] of routes(target.id, target.eventId)) {
    for (const query of bad) {
      const reply = await p.call(method, `${path}?${query}`, {
        token: expected.token,
        body: body(method, target.id),
      });
      const what = `${method} ${path}?${query}`;
      if (expected.status !== 400) expectStatus(reply, expected.status, what);
      else expectError(reply, 400, { parameter: query.split("=")[0] }, what);
    }
  }
}

Deno.test("[payments] a bad query on an authorization's routes is 401/403/404 for those who may not see it", async (t) => {
  await using p = await startPaymentsSystem();
  const shown = await linked(p);
  const published = { id: shown.id, eventId: shown.cast.event.id };
  const draft = await p.stripeEvent({ state: "draft" });
  const created = await p.link(draft.owner.token, draft.event.id, p.grant().code);
  expectStatus(created, 201);
  const hidden = { id: created.body.data.id, eventId: draft.event.id };
  const { cast } = shown;

  await t.step("anonymous: 401", async () => {
    await expectAll(p, published, { token: undefined, status: 401 });
  });
  await t.step("a stranger or co-organizer of a published event: 403", async () => {
    await expectAll(p, published, { token: cast.stranger.token, status: 403 });
    await expectAll(p, published, { token: cast.coorganizer.token, status: 403 });
  });
  await t.step("a stranger to a draft: 404, as for what does not exist", async () => {
    await expectAll(p, hidden, { token: draft.stranger.token, status: 404 });
    await expectAll(p, { id: "999999", eventId: "999999" }, {
      token: draft.stranger.token,
      status: 404,
    });
  });
  await t.step("its organizers still get the 400 naming the parameter", async () => {
    await expectAll(p, published, { token: cast.organizer.token, status: 400 });
    await expectAll(p, hidden, { token: draft.owner.token, status: 400 });
  });
  // As the catalog's and discounts' creates: who asks comes first; the query, independent of
  // the event the body names, before that event is looked at.
  await t.step("POST: anonymous 401, then 400 for anyone signed in; no code spent", async () => {
    const cases: [string | undefined, number][] = [
      [undefined, 401],
      [cast.stranger.token, 400],
      [cast.owner.token, 400],
    ];
    const other = await p.stripeEvent();
    const stripeCalls = p.stripe.calls.length;
    for (const [token, status] of cases) {
      for (const query of bad) {
        const reply = await p.link(token, other.event.id, p.grant().code, `?${query}`);
        expectStatus(reply, status, `POST ?${query}`);
      }
    }
    assert.equal(p.stripe.calls.length, stripeCalls);
  });
});

Deno.test("[payments] a deleted user's token is 401 on every route, whatever else is wrong", async () => {
  await using p = await startPaymentsSystem();
  const shown = await linked(p);
  const { organizer } = shown.cast;
  expectStatus(
    await p.call("DELETE", `/v1/users/${organizer.id}`, { token: organizer.token }),
    200,
  );
  const stripeCalls = p.stripe.calls.length;
  for (const [method, path] of routes(shown.id, shown.cast.event.id)) {
    for (const query of ["", ...bad.map((q) => `?${q}`)]) {
      const reply = await p.call(method, `${path}${query}`, {
        token: organizer.token,
        body: body(method, shown.id),
      });
      expectStatus(reply, 401, `${method} ${path}${query}`);
    }
  }
  for (const query of ["", ...bad.map((q) => `?${q}`)]) {
    const reply = await p.link(organizer.token, shown.cast.event.id, p.grant().code, query);
    expectStatus(reply, 401, `POST ${query}`);
  }
  expectStatus(
    await p.call("POST", "/v1/stripe-authorizations", { token: organizer.token, body: {} }),
    401,
    "POST without a resource",
  );
  assert.equal(p.stripe.calls.length, stripeCalls);
});
