import assert from "node:assert/strict";
import { catalogInternal } from "@shared/subjects.ts";
import { actorOf, expectStatus, startTestSystem } from "@testing/system.ts";

// `events` lets a service ask about the parents of an include in one round trip (a review,
// 2026-12-05: one each cost 1.3 s for 1,000 events). Each answer must be what the single form
// says about that key, for every kind of caller, or the includes would show someone more.
Deno.test("[catalog] internal.access about many events answers each as it answers one", async () => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const draft = await system.createEvent(cast.owner.token);
  await system.grantRole(cast.owner.token, {
    userId: cast.coorganizer.id,
    eventId: draft.id,
    role: "coorganizer",
  });
  const gone = await system.createEvent(cast.owner.token, { attributes: { state: "published" } });
  expectStatus(
    await system.call("DELETE", `/v1/events/${gone.id}`, { token: cast.owner.token }),
    200,
  );
  const keys = [
    cast.event.id,
    cast.event.identifier,
    draft.id,
    draft.identifier,
    gone.id,
    "999999999",
    "0000ffff",
    "not a key",
  ];
  const callers = [system.admin, cast.owner, cast.organizer, cast.coorganizer, cast.stranger];
  for (const actor of [null, ...callers.map(actorOf)]) {
    const many = await system.bus.request(catalogInternal.access, { actor, events: keys });
    assert.deepEqual(Object.keys(many.events!).sort(), [...keys].sort());
    for (const key of keys) {
      const one = await system.bus.request(catalogInternal.access, { actor, event: key });
      assert.deepEqual(many.caller, one.caller);
      const sorted = (answer: typeof one.event) =>
        answer && { ...answer, roles: [...answer.roles].sort() };
      assert.deepEqual(sorted(many.events![key]), sorted(one.event), `${actor?.id} on ${key}`);
    }
  }
  // Seen at all: the organizer's roles on the published event, and the draft hidden from a stranger.
  const seen = await system.bus.request(catalogInternal.access, {
    actor: actorOf(cast.stranger),
    events: [cast.event.id, draft.id],
  });
  assert.deepEqual(seen.events![cast.event.id]?.roles, []);
  assert.equal(seen.events![draft.id], null);
  const organizer = await system.bus.request(catalogInternal.access, {
    actor: actorOf(cast.organizer),
    events: [cast.event.identifier],
  });
  assert.deepEqual(organizer.events![cast.event.identifier]?.roles, ["organizer"]);
  assert.equal(organizer.event, null, "no single event asked");
});

// Payments asks it before acting on an old deletion (services/payments/follow_catalog.ts): a
// draft is live, whoever asks; a trashed or unknown event is not.
Deno.test("[catalog] internal.live-events names the live events among the ids, drafts too", async () => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const draft = await system.createEvent(cast.owner.token);
  const gone = await system.createEvent(cast.owner.token, { attributes: { state: "published" } });
  expectStatus(
    await system.call("DELETE", `/v1/events/${gone.id}`, { token: cast.owner.token }),
    200,
  );
  const { live } = await system.bus.request(catalogInternal.liveEvents, {
    ids: [cast.event.id, draft.id, gone.id, "999999999", draft.identifier, "not an id"],
  });
  assert.deepEqual(live.sort(), [cast.event.id, draft.id].sort());
  const restored = await system.call("PATCH", `/v1/events/${gone.id}?get_trashed=true`, {
    token: system.admin.token,
    body: { data: { type: "event", id: gone.id, attributes: { "deleted-at": null } } },
  });
  expectStatus(restored, 200);
  const after = await system.bus.request(catalogInternal.liveEvents, { ids: [gone.id] });
  assert.deepEqual(after.live, [gone.id], "restored: live again");
});
