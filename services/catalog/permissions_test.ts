import {
  type EventCast,
  expectError,
  expectStatus,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";

// `page[offset]` is of no route here; `include=bogus` is a path of no resource.
const bad = ["include=bogus", "page[offset]=1"];

/** GET of each path with each bad query as `token`'s user: `status` (a 400 names the parameter). */
async function expectAll(
  system: TestSystem,
  paths: string[],
  expected: { token: string | undefined; status: number },
): Promise<void> {
  for (const path of paths) {
    for (const query of bad) {
      const reply = await system.call("GET", `${path}?${query}`, { token: expected.token });
      const what = `GET ${path}?${query}`;
      if (expected.status !== 400) expectStatus(reply, expected.status, what);
      else expectError(reply, 400, { parameter: query.split("=")[0] }, what);
    }
  }
}

/** The event's ticket and co-organizer's grant, which only its co-organizers may see. */
async function managedPaths(system: TestSystem, cast: EventCast): Promise<string[]> {
  const ticket = await system.createTicket(cast.owner.token, cast.event.id);
  return [`/v1/tickets/${ticket}`, `/v1/users-events-roles/${cast.grants.coorganizer}`];
}

Deno.test("[catalog] a bad query on a resource by id is 401/403/404 for those who may not see it", async (t) => {
  await using system = await startTestSystem();
  const published = await system.eventWithCast({ attributes: { state: "published" } });
  const draft = await system.eventWithCast();
  const shown = await managedPaths(system, published);
  const hidden = await managedPaths(system, draft);
  const missing = ["/v1/tickets/999999", "/v1/users-events-roles/999999", "/v1/events/999999"];
  const user = `/v1/users/${published.owner.id}`;

  await t.step("anonymous: 401 for tickets, roles and users", async () => {
    await expectAll(system, [...shown, user], { token: undefined, status: 401 });
  });
  await t.step("a deleted user's token: 401 everywhere, a published event's GET too", async () => {
    const gone = await system.signUp();
    expectStatus(await system.call("DELETE", `/v1/users/${gone.id}`, { token: gone.token }), 200);
    const event = `/v1/events/${published.event.id}`;
    await expectAll(system, [...shown, user, event], { token: gone.token, status: 401 });
  });
  await t.step("a stranger to a published event's ticket and role, or to a user: 403", async () => {
    await expectAll(system, [...shown, user], { token: published.stranger.token, status: 403 });
  });
  await t.step("a stranger to a draft's: 404, as for what does not exist", async () => {
    const token = draft.stranger.token;
    await expectAll(system, [...hidden, `/v1/events/${draft.event.id}`], { token, status: 404 });
    await expectAll(system, missing, { token, status: 404 });
    await expectAll(system, [`/v1/events/${draft.event.id}`], { token: undefined, status: 404 });
  });
  await t.step("those who may see it still get the 400 naming the parameter", async () => {
    const token = draft.coorganizer.token;
    await expectAll(system, [...hidden, `/v1/events/${draft.event.id}`], { token, status: 400 });
    await expectAll(system, [user], { token: published.owner.token, status: 400 });
    // A published event is anyone's to see.
    const event = `/v1/events/${published.event.id}`;
    await expectAll(system, [event], { token: undefined, status: 400 });
    await expectAll(system, [event], { token: published.stranger.token, status: 400 });
  });
});
