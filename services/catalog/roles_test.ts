import assert from "node:assert/strict";
import type { Tx } from "@shared/db.ts";
import { untilWaitingForLocks } from "@testing/table_lock.ts";
import {
  type EventCast,
  expectError,
  expectStatus,
  grantOf,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";

function grantBody(userId: string, eventId: string, role: string) {
  return {
    data: {
      type: "users-events-role",
      relationships: {
        user: { data: { type: "user", id: userId } },
        event: { data: { type: "event", id: eventId } },
        role: { data: { type: "role", id: role } },
      },
    },
  };
}

async function grant(
  system: TestSystem,
  token: string | undefined,
  userId: string,
  eventId: string,
  role: string,
) {
  return await system.call("POST", "/v1/users-events-roles", {
    token,
    body: grantBody(userId, eventId, role),
  });
}

async function grantCount(system: TestSystem, eventId: string, role?: string): Promise<number> {
  const [{ count }] = await system.sql`select count(*)::int as count from users_events_roles
    where event_id = ${eventId} and (${role ?? null}::text is null or role_name = ${role ?? null})`;
  return count;
}

Deno.test("[catalog] GET /v1/roles lists the three event roles", async (t) => {
  await using system = await startTestSystem();

  await t.step("the list, for anyone", async () => {
    const reply = await system.call("GET", "/v1/roles");
    expectStatus(reply, 200);
    const byId = Object.fromEntries(
      reply.body.data.map((r: { id: string; type: string; attributes: unknown }) => [r.id, r]),
    );
    assert.deepEqual(Object.keys(byId).sort(), ["coorganizer", "organizer", "owner"]);
    assert.equal(byId.owner.type, "role");
    assert.equal(byId.owner.attributes.name, "owner");
    assert.equal(typeof byId.owner.attributes["title-name"], "string");
    assert.equal(reply.body.meta.count, 3);
  });

  await t.step("page[size] and page[number] page the roles as the links promise", async () => {
    const pages: string[][] = [];
    for (const number of [1, 2, 3, 4]) {
      const reply = await system.call(
        "GET",
        `/v1/roles?sort=name&page[size]=1&page[number]=${number}`,
      );
      expectStatus(reply, 200);
      assert.equal(reply.body.meta.count, 3);
      pages.push(reply.body.data.map((role: { id: string }) => role.id));
    }
    assert.deepEqual(pages, [["coorganizer"], ["organizer"], ["owner"], []]);
    const two = await system.call("GET", "/v1/roles?sort=-name&page[size]=2&page[number]=2");
    assert.deepEqual(two.body.data.map((role: { id: string }) => role.id), ["coorganizer"]);
    assert.equal(two.body.links.next, undefined);
    const all = await system.call("GET", "/v1/roles?page[size]=0");
    assert.equal(all.body.data.length, 3);
  });

  await t.step("one role by name; an unknown one is 404; roles are read-only", async () => {
    const reply = await system.call("GET", "/v1/roles/coorganizer");
    expectStatus(reply, 200);
    assert.equal(reply.body.data.id, "coorganizer");
    expectError(await system.call("GET", "/v1/roles/superuser"), 404);
    const post = await system.call("POST", "/v1/roles", {
      token: system.admin.token,
      body: { data: { type: "role", attributes: { name: "x", "title-name": "X" } } },
    });
    expectError(post, 405);
  });

  await t.step("a name no role can have (a NUL in it) is 404 as well, not a 400", async () => {
    for (const name of ["%00", "owner%00", "%00owner"]) {
      const reply = await system.call("GET", `/v1/roles/${name}`);
      expectError(reply, 404, {}, name);
      assert.match(reply.body.errors[0].detail, /Cannot find role/);
    }
  });
});

Deno.test("[catalog] POST /v1/users-events-roles grants roles by level", async (t) => {
  await using system = await startTestSystem();
  const cast: EventCast = await system.eventWithCast();
  const eventId = cast.event.id;

  await t.step("organizer grants coorganizer (201 with Location)", async () => {
    const newcomer = await system.signUp();
    const reply = await grant(system, cast.organizer.token, newcomer.id, eventId, "coorganizer");
    expectStatus(reply, 201);
    const id = reply.body.data.id;
    assert.equal(reply.headers.get("Location"), `/v1/users-events-roles/${id}`);
    assert.equal(reply.body.data.type, "users-events-role");
    assert.deepEqual(reply.body.data.relationships.role.data, { type: "role", id: "coorganizer" });
    assert.deepEqual(reply.body.data.relationships.user.data, { type: "user", id: newcomer.id });
    assert.deepEqual(reply.body.data.relationships.event.data, { type: "event", id: eventId });
    // The new co-organizer sees the draft on the next request.
    expectStatus(await system.call("GET", `/v1/events/${eventId}`, { token: newcomer.token }), 200);
  });

  await t.step("anonymous POST is 401, whatever the event's state", async () => {
    const target = await system.signUp();
    const published = await system.createEvent(cast.owner.token, {
      attributes: { state: "published" },
    });
    const before = await grantCount(system, eventId);
    for (const id of [published.id, eventId]) {
      expectError(await grant(system, undefined, target.id, id, "coorganizer"), 401, {}, id);
    }
    assert.equal(await grantCount(system, eventId), before, "nothing was granted");
  });

  await t.step("coorganizer and stranger cannot grant", async () => {
    const target = await system.signUp();
    const before = await grantCount(system, eventId);
    expectError(
      await grant(system, cast.coorganizer.token, target.id, eventId, "coorganizer"),
      403,
    );
    expectError(
      await grant(system, cast.coorganizer.token, cast.coorganizer.id, eventId, "organizer"),
      403,
    );
    const strangerAnswer = await grant(
      system,
      cast.stranger.token,
      cast.stranger.id,
      eventId,
      "owner",
    );
    // The draft is invisible to the stranger: refused either way, never granted.
    assert.ok([403, 422].includes(strangerAnswer.status), `stranger: ${strangerAnswer.status}`);
    assert.equal(await grantCount(system, eventId), before);
  });

  await t.step("only an owner or an admin grants owner", async () => {
    const target = await system.signUp();
    expectError(await grant(system, cast.organizer.token, target.id, eventId, "owner"), 403);
    expectError(
      await grant(system, cast.organizer.token, cast.organizer.id, eventId, "owner"),
      403,
    );
    assert.equal(await grantCount(system, eventId, "owner"), 1);
    expectStatus(await grant(system, cast.owner.token, target.id, eventId, "owner"), 201);
    const another = await system.signUp();
    expectStatus(await grant(system, system.admin.token, another.id, eventId, "owner"), 201);
    assert.equal(await grantCount(system, eventId, "owner"), 3);
  });

  await t.step("a duplicate grant is 409, pointing at the role the user already has", async () => {
    const before = await grantCount(system, eventId);
    expectError(
      await grant(system, cast.owner.token, cast.coorganizer.id, eventId, "coorganizer"),
      409,
      { pointer: "/data/relationships/role" },
    );
    assert.equal(await grantCount(system, eventId), before);
  });

  await t.step("changing a grant to a role the user already has is 409 there too", async () => {
    const extra = await grant(system, cast.owner.token, cast.coorganizer.id, eventId, "organizer");
    expectStatus(extra, 201);
    const id = extra.body.data.id;
    const reply = await system.call("PATCH", `/v1/users-events-roles/${id}`, {
      token: cast.owner.token,
      body: {
        data: {
          type: "users-events-role",
          id,
          relationships: { role: { data: { type: "role", id: "coorganizer" } } },
        },
      },
    });
    expectError(reply, 409, { pointer: "/data/relationships/role" });
    const [row] = await system.sql`select role_name from users_events_roles where id = ${id}`;
    assert.equal(row.role_name, "organizer", "the grant is unchanged");
    expectStatus(
      await system.call("DELETE", `/v1/users-events-roles/${id}`, { token: cast.owner.token }),
      200,
    );
  });

  await t.step("unknown role, user or event is 422; wrong types are 409", async () => {
    expectError(
      await grant(system, cast.owner.token, cast.stranger.id, eventId, "superuser"),
      422,
      { pointer: "/data/relationships/role" },
    );
    expectError(
      await grant(system, cast.owner.token, "987654321", eventId, "coorganizer"),
      422,
      { pointer: "/data/relationships/user" },
    );
    expectError(
      await grant(system, cast.owner.token, cast.stranger.id, "987654321", "coorganizer"),
      422,
      { pointer: "/data/relationships/event" },
    );
    const body = grantBody(cast.stranger.id, eventId, "coorganizer");
    body.data.relationships.user.data.type = "event";
    expectError(
      await system.call("POST", "/v1/users-events-roles", { token: cast.owner.token, body }),
      409,
    );
    const missing = grantBody(cast.stranger.id, eventId, "coorganizer") as {
      data: { relationships: Record<string, unknown> };
    };
    delete missing.data.relationships.role;
    expectError(
      await system.call("POST", "/v1/users-events-roles", {
        token: cast.owner.token,
        body: missing,
      }),
      422,
      { pointer: "/data/relationships/role" },
    );
  });
});

Deno.test("[catalog] /v1/users-events-roles/{id} reads, changes and revokes", async (t) => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast();
  const eventId = cast.event.id;

  await t.step("GET: the event's co-organizers, the user it names, admins", async () => {
    const path = `/v1/users-events-roles/${cast.grants.organizer}`;
    expectError(await system.call("GET", path), 401);
    // The cast's event is a draft: a stranger does not learn that its roles exist.
    expectError(await system.call("GET", path, { token: cast.stranger.token }), 404);
    for (const token of [cast.coorganizer.token, cast.organizer.token, cast.owner.token]) {
      expectStatus(await system.call("GET", path, { token }), 200);
    }
    expectStatus(await system.call("GET", path, { token: system.admin.token }), 200);
    const withIncludes = await system.call("GET", `${path}?include=user,role,event`, {
      token: cast.owner.token,
    });
    expectStatus(withIncludes, 200);
    const types = withIncludes.body.included.map((r: { type: string }) => r.type).sort();
    assert.deepEqual(types, ["event", "role", "user"]);
    const user = withIncludes.body.included.find((r: { type: string }) => r.type === "user");
    assert.equal(user.attributes.email, undefined, "another user's email leaks");
  });

  // As catalog.apib says: a grant's PATCH may send back its own user and event, never others.
  await t.step(
    "PATCH: another user or event is a 422 pointing at it; its own are taken",
    async () => {
      const path = `/v1/users-events-roles/${cast.grants.coorganizer}`;
      const patch = (relationships: Record<string, unknown>) =>
        system.call("PATCH", path, {
          token: cast.owner.token,
          body: { data: { type: "users-events-role", id: cast.grants.coorganizer, relationships } },
        });
      const ref = (type: string, id: string) => ({ data: { type, id } });
      const others = { user: cast.stranger.id, event: (await system.eventWithCast()).event.id };
      for (const [name, id] of Object.entries(others)) {
        const reply = await patch({ [name]: ref(name, id) });
        expectError(reply, 422, { pointer: `/data/relationships/${name}` }, name);
      }
      // What ember-data sends on save: every relationship it read.
      const [{ identifier }] = await system
        .sql`select identifier from events where id = ${eventId}`;
      for (const event of [eventId, identifier]) {
        const reply = await patch({
          user: ref("user", cast.coorganizer.id),
          event: ref("event", event),
          role: ref("role", "coorganizer"),
        });
        expectStatus(reply, 200, `event named ${event}`);
      }
      const [row] = await system.sql`select user_id, event_id from users_events_roles
      where id = ${cast.grants.coorganizer}`;
      assert.equal(String(row.user_id), cast.coorganizer.id, "the grant's user is unchanged");
      assert.equal(String(row.event_id), eventId, "the grant's event is unchanged");
    },
  );

  await t.step("related and relationship routes resolve", async () => {
    const base = `/v1/users-events-roles/${cast.grants.coorganizer}`;
    const token = cast.owner.token;
    for (
      const [rel, id] of [["user", cast.coorganizer.id], ["event", eventId], [
        "role",
        "coorganizer",
      ]]
    ) {
      const related = await system.call("GET", `${base}/${rel}`, { token });
      expectStatus(related, 200, rel);
      assert.equal(related.body.data.id, id);
      const linkage = await system.call("GET", `${base}/relationships/${rel}`, { token });
      expectStatus(linkage, 200, rel);
      assert.equal(linkage.body.data.id, id);
    }
  });

  await t.step("GET /v1/events/{id}/users-events-roles lists the event's people", async () => {
    const reply = await system.call(
      "GET",
      `/v1/events/${eventId}/users-events-roles?include=user,role`,
      { token: cast.coorganizer.token },
    );
    expectStatus(reply, 200);
    assert.equal(reply.body.meta.count, 3);
    const roles = reply.body.data.map((g: { relationships: { role: { data: { id: string } } } }) =>
      g.relationships.role.data.id
    ).sort();
    assert.deepEqual(roles, ["coorganizer", "organizer", "owner"]);
    assert.ok(!reply.text.includes(cast.owner.email), "emails of other users leak");
  });

  await t.step("a user sees their own events and roles", async () => {
    const events = await system.call("GET", `/v1/users/${cast.coorganizer.id}/events`, {
      token: cast.coorganizer.token,
    });
    expectStatus(events, 200);
    assert.deepEqual(events.body.data.map((e: { id: string }) => e.id), [eventId]);
    const grants = await system.call("GET", `/v1/users/${cast.coorganizer.id}/users-events-roles`, {
      token: cast.coorganizer.token,
    });
    expectStatus(grants, 200);
    assert.deepEqual(grants.body.data.map((g: { id: string }) => g.id), [cast.grants.coorganizer]);
    expectError(
      await system.call("GET", `/v1/users/${cast.coorganizer.id}/events`, {
        token: cast.stranger.token,
      }),
      403,
    );
  });

  await t.step("DELETE: coorganizer 403, organizer revokes a coorganizer", async () => {
    const path = `/v1/users-events-roles/${cast.grants.coorganizer}`;
    expectError(await system.call("DELETE", path), 401);
    expectError(
      await system.call("DELETE", `/v1/users-events-roles/${cast.grants.organizer}`, {
        token: cast.coorganizer.token,
      }),
      403,
    );
    expectError(await system.call("DELETE", path, { token: cast.stranger.token }), 404);
    const reply = await system.call("DELETE", path, { token: cast.organizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.meta, { message: "Object successfully deleted" });
    expectError(await system.call("GET", path, { token: cast.owner.token }), 404);
  });

  await t.step("anyone may leave a role given to them, but not another's", async () => {
    const own = await grant(system, cast.owner.token, cast.stranger.id, eventId, "coorganizer");
    expectStatus(own, 201);
    const path = `/v1/users-events-roles/${own.body.data.id}`;
    expectError(
      await system.call("DELETE", `/v1/users-events-roles/${cast.grants.organizer}`, {
        token: cast.stranger.token,
      }),
      403,
    );
    expectStatus(await system.call("DELETE", path, { token: cast.stranger.token }), 200);
    // Gone with the role: the draft is not found for them again.
    expectError(
      await system.call("GET", `/v1/events/${eventId}`, { token: cast.stranger.token }),
      404,
    );
  });

  await t.step("an organizer cannot revoke an owner", async () => {
    expectError(
      await system.call("DELETE", `/v1/users-events-roles/${cast.grants.owner}`, {
        token: cast.organizer.token,
      }),
      403,
    );
    assert.equal(await grantCount(system, eventId, "owner"), 1);
  });

  await t.step("the last owner cannot be removed (409), by anyone", async () => {
    const path = `/v1/users-events-roles/${cast.grants.owner}`;
    for (const token of [cast.owner.token, system.admin.token]) {
      expectError(await system.call("DELETE", path, { token }), 409);
      expectError(
        await system.call("PATCH", path, {
          token,
          body: {
            data: {
              type: "users-events-role",
              id: cast.grants.owner,
              relationships: { role: { data: { type: "role", id: "organizer" } } },
            },
          },
        }),
        409,
      );
    }
    assert.equal(await grantCount(system, eventId, "owner"), 1);
  });

  await t.step("with a second owner, the first can go; then the second is the last", async () => {
    const second = await grant(system, cast.owner.token, cast.organizer.id, eventId, "owner");
    expectStatus(second, 201);
    expectStatus(
      await system.call("DELETE", `/v1/users-events-roles/${cast.grants.owner}`, {
        token: cast.owner.token,
      }),
      200,
    );
    expectError(
      await system.call("DELETE", `/v1/users-events-roles/${second.body.data.id}`, {
        token: cast.organizer.token,
      }),
      409,
    );
    // The former owner lost access on the very next request.
    expectError(
      await system.call("GET", `/v1/events/${eventId}`, { token: cast.owner.token }),
      404,
    );
  });
});

Deno.test("[catalog] two owners revoking each other at once leave one owner", async () => {
  await using system = await startTestSystem();
  const first = await system.signUp();
  const second = await system.signUp();
  const event = await system.createEvent(first.token);
  const secondGrant = await system.grantRole(first.token, {
    userId: second.id,
    eventId: event.id,
    role: "owner",
  });
  const firstGrant = await grantOf(system, first.id, event.id);
  // Both revocations are let through their checks, then held at their change (the grants'
  // rows locked here) so that they overlap for sure.
  const release = Promise.withResolvers<void>();
  const held = Promise.withResolvers<void>();
  const holding = system.sql.begin(async (tx) => {
    await tx`select id from users_events_roles where event_id = ${event.id} for update`;
    held.resolve();
    await release.promise;
  });
  await Promise.race([held.promise, holding]);
  const revoking = Promise.all([
    system.call("DELETE", `/v1/users-events-roles/${secondGrant}`, { token: first.token }),
    system.call("DELETE", `/v1/users-events-roles/${firstGrant}`, { token: second.token }),
  ]);
  await untilWaitingForLocks(system.sql, { count: 2, what: "both revocations" });
  release.resolve();
  await holding;
  const replies = await revoking;
  // Each counted two owners ahead of its change: both went through, and none was left. Now one
  // goes through; the other is a 409 (it raced), or a 403 on a loaded machine where it started
  // only after the first had committed (its caller is then no owner).
  const [won, lost] = replies.map((reply) => reply.status).sort();
  assert.equal(won, 200);
  assert.ok(lost === 403 || lost === 409, `the other answered ${lost}`);
  const [{ owners }] = await system.sql`select count(*)::int as owners from users_events_roles
    where event_id = ${event.id} and role_name = 'owner'`;
  assert.equal(owners, 1);
});

/**
 * Runs `requests` at once while the grant `held` is locked by another session (so that they
 * overlap at their changes), then releases it, after that session ran `meanwhile` (a change
 * committed while they were held); their statuses, in order. It lets go once `waiting` of them
 * (all by default) wait for a lock, or as many as have not answered yet: one that goes first
 * may let another be answered without meeting the lock at all.
 */
async function overlapping(
  system: TestSystem,
  held: string,
  requests: (() => Promise<{ status: number }>)[],
  { meanwhile = () => Promise.resolve(), waiting = requests.length }: {
    meanwhile?: (tx: Tx) => Promise<unknown>;
    waiting?: number;
  } = {},
): Promise<number[]> {
  const release = Promise.withResolvers<void>();
  // Taken before the requests start, and each request waiting for a lock before it is let go:
  // fixed pauses here let a slow lock or a slow request miss the overlap (a probe taking the
  // lock 400 ms late made the leave below a 200, the event left with no owner).
  const locked = Promise.withResolvers<void>();
  const holding = system.sql.begin(async (tx) => {
    await tx`select id from users_events_roles where id = ${held} for update`;
    locked.resolve();
    await release.promise;
    await meanwhile(tx);
  });
  await Promise.race([locked.promise, holding]);
  let unanswered = requests.length;
  const replies = Promise.all(requests.map((request) => request().finally(() => unanswered--)));
  const count = () => Math.min(waiting, unanswered);
  await untilWaitingForLocks(system.sql, { count, what: "the requests" });
  release.resolve();
  await holding;
  return (await replies).map((reply) => reply.status);
}

// A review: a user leaving their own grant was checked by the role read before the transaction.
// Made an owner's meanwhile, with the other owner gone, the grant was deleted unchecked and the
// event left with no owner.
Deno.test("[catalog] leaving a grant made an owner's meanwhile keeps the event's last owner", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const member = await system.signUp();
  const event = await system.createEvent(owner.token);
  const memberGrant = await system.grantRole(owner.token, {
    userId: member.id,
    eventId: event.id,
    role: "coorganizer",
  });
  const ownerGrant = await grantOf(system, owner.id, event.id);
  const leave = () =>
    system.call("DELETE", `/v1/users-events-roles/${memberGrant}`, { token: member.token });
  // What a promotion and the first owner leaving would commit meanwhile.
  const [left] = await overlapping(system, memberGrant, [leave], {
    meanwhile: async (tx) => {
      await tx`update users_events_roles set role_name = 'owner' where id = ${memberGrant}`;
      await tx`delete from users_events_roles where id = ${ownerGrant}`;
    },
  });
  assert.equal(left, 409);
  assert.equal(await grantCount(system, event.id, "owner"), 1);
});

Deno.test("[catalog] purging a user and changing an owner's role at once: no 500, an owner left", async (t) => {
  await using system = await startTestSystem();
  const admin = system.admin.token;
  const [user, partner, other] = [
    await system.signUp(),
    await system.signUp(),
    await system.signUp(),
  ];
  const purge = (id: string) => () =>
    system.call("DELETE", `/v1/users/${id}?permanent=true`, { token: admin });

  await t.step(
    "the partner revokes their own grant meanwhile: 409, the partner stays",
    async () => {
      const event = await system.createEvent(user.token);
      await system.grantRole(user.token, { userId: partner.id, eventId: event.id, role: "owner" });
      const partnerGrant = await grantOf(system, partner.id, event.id);
      const statuses = await overlapping(system, await grantOf(system, user.id, event.id), [
        purge(user.id),
        () =>
          system.call("DELETE", `/v1/users-events-roles/${partnerGrant}`, { token: partner.token }),
      ], { waiting: 1 }); // The purge meets the held grant; the revocation may get through first.
      // Whichever goes first, the other is refused: the purge (the user would be the only owner
      // left) or the revocation (no owner would be left).
      assert.deepEqual([...statuses].sort(), [200, 409]);
      const [{ owners }] = await system.sql`select count(*)::int as owners from users_events_roles
      where event_id = ${event.id} and role_name = 'owner'`;
      assert.equal(owners, 1);
    },
  );
  await t.step("an owner of one of their events revokes them meanwhile: no deadlock", async () => {
    const gone = await system.signUp();
    const shared = await system.createEvent(gone.token);
    const held = await system.createEvent(gone.token);
    await system.grantRole(gone.token, { userId: partner.id, eventId: shared.id, role: "owner" });
    await system.grantRole(gone.token, { userId: other.id, eventId: held.id, role: "owner" });
    const goneOnShared = await grantOf(system, gone.id, shared.id);
    // Locks taken grant first, then event, against event first, then grant: a deadlock, a 500.
    const [purged, revoked] = await overlapping(system, await grantOf(system, gone.id, held.id), [
      purge(gone.id),
      () =>
        system.call("DELETE", `/v1/users-events-roles/${goneOnShared}`, { token: partner.token }),
    ]);
    assert.equal(purged, 200);
    assert.ok(revoked === 200 || revoked === 404, `the revocation answered ${revoked}`);
  });
});

// A grant's PATCH locked the grant's row, then the event's (to keep an owner); a revocation
// locks the event's row, then deletes the grant. Met, they deadlocked: Postgres aborted one after
// a second, and its caller got a 503 for a change nothing stood in the way of.
Deno.test("[catalog] changing a role while its holder leaves it, at once: no deadlock", async () => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast();
  const grantId = cast.grants.coorganizer;
  const held = await system.sql.reserve();
  let replies: { status: number }[];
  try {
    // The test's own session holds the grant: the PATCH, started first, waits for it; the
    // holder's leave, started next, then waits too (for the event's row, or the grant's).
    await held`begin`;
    await held`select 1 from users_events_roles where id = ${grantId} for update`;
    const patch = system.call("PATCH", `/v1/users-events-roles/${grantId}`, {
      token: cast.owner.token,
      body: {
        data: {
          type: "users-events-role",
          id: grantId,
          relationships: { role: { data: { type: "role", id: "organizer" } } },
        },
      },
    });
    await untilWaitingForLocks(system.sql, { count: 1, what: "the PATCH" });
    const leave = system.call("DELETE", `/v1/users-events-roles/${grantId}`, {
      token: cast.coorganizer.token,
    });
    await untilWaitingForLocks(system.sql, { count: 2, what: "the PATCH and the leave" });
    await held`commit`;
    replies = await Promise.all([patch, leave]);
  } finally {
    held.release();
  }
  assert.deepEqual(replies.map((reply) => reply.status), [200, 200]);
  const [{ left }] = await system.sql`select count(*)::int as left from users_events_roles
    where id = ${grantId}`;
  assert.equal(left, 0);
});

Deno.test("[catalog] a role on a draft is not found by those who cannot see the draft", async () => {
  await using system = await startTestSystem();
  const draft = await system.eventWithCast();
  const published = await system.eventWithCast({ attributes: { state: "published" } });
  for (const [cast, expected] of [[draft, 404], [published, 403]] as const) {
    const grant = await grantOf(system, cast.coorganizer.id, cast.event.id);
    const path = `/v1/users-events-roles/${grant}`;
    expectStatus(await system.call("GET", path, { token: cast.stranger.token }), expected, path);
    expectStatus(await system.call("GET", path, { token: cast.coorganizer.token }), 200, path);
  }
});

Deno.test("[catalog] an owner who deleted their account does not count as the event's owner", async (t) => {
  await using system = await startTestSystem();
  const first = await system.signUp();
  const second = await system.signUp();
  const event = await system.createEvent(first.token, { attributes: { state: "published" } });
  const added = await grant(system, first.token, second.id, event.id, "owner");
  expectStatus(added, 201);
  expectStatus(await system.call("DELETE", `/v1/users/${first.id}`, { token: first.token }), 200);

  await t.step("the other owner is now the last: their grant stays (409)", async () => {
    const path = `/v1/users-events-roles/${added.body.data.id}`;
    expectError(await system.call("DELETE", path, { token: second.token }), 409);
  });
  await t.step("and they cannot delete their account either (409)", async () => {
    const path = `/v1/users/${second.id}`;
    expectError(await system.call("DELETE", path, { token: second.token }), 409);
  });
  assert.equal(await grantCount(system, event.id, "owner"), 2);
});

Deno.test("[catalog] the roles of a soft-deleted event are hidden and unchangeable with it", async (t) => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const organizerGrant = `/v1/users-events-roles/${cast.grants.organizer}`;
  const coorganizerGrant = `/v1/users-events-roles/${cast.grants.coorganizer}`;
  const eventPath = `/v1/events/${cast.event.id}`;
  expectStatus(await system.call("DELETE", eventPath, { token: cast.owner.token }), 200);

  await t.step("not found for its people: read, change, revoke (404)", async () => {
    expectError(await system.call("GET", organizerGrant, { token: cast.coorganizer.token }), 404);
    const promote = {
      data: {
        type: "users-events-role",
        id: cast.grants.coorganizer,
        relationships: { role: { data: { type: "role", id: "organizer" } } },
      },
    };
    expectError(
      await system.call("PATCH", coorganizerGrant, { token: cast.organizer.token, body: promote }),
      404,
    );
    expectError(await system.call("DELETE", organizerGrant, { token: cast.owner.token }), 404);
    assert.equal(await grantCount(system, cast.event.id), 3, "nothing changed");
  });
  await t.step("a user's own list leaves them out", async () => {
    const path = `/v1/users/${cast.coorganizer.id}/users-events-roles`;
    const reply = await system.call("GET", path, { token: cast.coorganizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, []);
    assert.equal(reply.body.meta.count, 0);
  });
  await t.step("admins asking for the trash still see them", async () => {
    const path = `${organizerGrant}?get_trashed=true`;
    expectStatus(await system.call("GET", path, { token: system.admin.token }), 200);
    expectError(await system.call("GET", organizerGrant, { token: system.admin.token }), 404);
  });
});

Deno.test("[catalog] an event's owner is its first live owner, as the owner grants change", async (t) => {
  await using system = await startTestSystem();
  const first = await system.signUp();
  const second = await system.signUp();
  const event = await system.createEvent(first.token, { attributes: { state: "published" } });
  const ownerOf = async () =>
    (await system.call("GET", `/v1/events/${event.id}/relationships/owner`)).body.data?.id;
  const added = await grant(system, first.token, second.id, event.id, "owner");
  expectStatus(added, 201);
  assert.equal(await ownerOf(), first.id, "the first owner stays while they are one");

  await t.step("the first owner's grant revoked: the other owner is the owner", async () => {
    const [mine] = await system.sql`select id from users_events_roles
      where user_id = ${first.id} and event_id = ${event.id}`;
    const revoke = `/v1/users-events-roles/${mine.id}`;
    expectStatus(await system.call("DELETE", revoke, { token: second.token }), 200);
    assert.equal(await ownerOf(), second.id);
    const facts = await system.readFacts();
    const updated = facts.filter((f) => f.type === "catalog.event.updated");
    assert.equal(updated.at(-1)?.data.owner, second.id, "announced with its fact");
  });
  await t.step("saving the event back with that owner is accepted", async () => {
    const body = {
      data: {
        type: "event",
        id: event.id,
        attributes: { name: "Handed over" },
        relationships: { owner: { data: { type: "user", id: second.id } } },
      },
    };
    expectStatus(
      await system.call("PATCH", `/v1/events/${event.id}`, { token: second.token, body }),
      200,
    );
  });
  await t.step("an owner who deletes their account is no longer shown as one", async () => {
    const third = await system.signUp();
    expectStatus(await grant(system, second.token, third.id, event.id, "owner"), 201);
    expectStatus(
      await system.call("DELETE", `/v1/users/${second.id}`, { token: second.token }),
      200,
    );
    assert.equal(await ownerOf(), third.id);
  });
});
