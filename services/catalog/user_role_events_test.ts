/**
 * A user's events by the role they hold (`owner-events`, `organizer-events`, `coorganizer-events`,
 * `marketer-events`): what open-event-frontend's admin users table reads, as the original served
 * them (its event list filtered by the user and the role).
 */
import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

type Resource = { type: string; id: string; relationships?: Record<string, { data?: unknown }> };
const ids = (data: Resource[] | undefined) => (data ?? []).map((r) => r.id).sort();
const includedOf = (body: { included?: Resource[] }, type: string) =>
  ids(body.included?.filter((r) => r.type === type));
const byId = (data: Resource[], id: string) => data.find((r) => r.id === id)!;
const ROLE_LISTS = ["owner-events", "organizer-events", "coorganizer-events", "marketer-events"];

async function world() {
  const system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const draft = await system.createEvent(cast.owner.token);
  const granted = await system.call("POST", "/v1/users-events-roles", {
    token: cast.owner.token,
    body: {
      data: {
        type: "users-events-role",
        relationships: {
          user: { data: { type: "user", id: cast.organizer.id } },
          event: { data: { type: "event", id: draft.id } },
          role: { data: { type: "role", id: "coorganizer" } },
        },
      },
    },
  });
  expectStatus(granted, 201);
  return { system, cast, draft };
}

Deno.test("[catalog] /v1/users/{id}/<role>-events list the events the user holds that role on", async (t) => {
  const { system, cast, draft } = await world();
  await using _ = system;
  const event = cast.event.id;
  const listOf = async (user: { id: string; token: string }, rel: string, query = "") => {
    const reply = await system.call("GET", `/v1/users/${user.id}/${rel}${query}`, {
      token: user.token,
    });
    expectStatus(reply, 200);
    return reply.body;
  };

  await t.step("each role's events, drafts to whom holds a role on them", async () => {
    assert.deepEqual(
      ids((await listOf(cast.owner, "owner-events")).data),
      [event, draft.id].sort(),
    );
    assert.deepEqual(ids((await listOf(cast.owner, "organizer-events")).data), []);
    assert.deepEqual(ids((await listOf(cast.organizer, "organizer-events")).data), [event]);
    assert.deepEqual(ids((await listOf(cast.organizer, "coorganizer-events")).data), [draft.id]);
    assert.deepEqual(ids((await listOf(cast.coorganizer, "coorganizer-events")).data), [event]);
    for (const user of [cast.owner, cast.organizer, cast.coorganizer]) {
      const marketer = await listOf(user, "marketer-events");
      assert.deepEqual(marketer.data, []);
      assert.equal(marketer.meta.count, 0);
    }
  });

  await t.step("filter, sort, paging and include as on /v1/users/{id}/events", async () => {
    const drafts = encodeURIComponent(JSON.stringify([{ name: "state", op: "eq", val: "draft" }]));
    const filtered = await listOf(cast.owner, "owner-events", `?filter=${drafts}`);
    assert.deepEqual(ids(filtered.data), [draft.id]);
    const paged = await listOf(cast.owner, "owner-events", "?sort=-id&page[size]=1&include=owner");
    assert.deepEqual(ids(paged.data), [String(Math.max(Number(event), Number(draft.id)))]);
    assert.equal(paged.meta.count, 2);
    assert.deepEqual(includedOf(paged, "user"), [cast.owner.id]);
    const sparse = await listOf(cast.owner, "owner-events", "?fields[event]=name");
    assert.deepEqual(Object.keys(sparse.data[0].attributes), ["name"]);
    expectError(
      await system.call("GET", `/v1/users/${cast.owner.id}/owner-events?sort=nope`, {
        token: cast.owner.token,
      }),
      400,
    );
  });

  await t.step("the user themself and admins only", async () => {
    for (const rel of ROLE_LISTS) {
      const path = `/v1/users/${cast.owner.id}/${rel}`;
      expectError(await system.call("GET", path, { token: cast.stranger.token }), 403);
      expectError(await system.call("GET", path), 401);
      expectStatus(await system.call("GET", path, { token: system.admin.token }), 200);
    }
    const admin = await listOf({ id: cast.owner.id, token: system.admin.token }, "owner-events");
    assert.deepEqual(ids(admin.data), [event, draft.id].sort());
  });

  await t.step("relationship routes give the linkage", async () => {
    const path = `/v1/users/${cast.organizer.id}/relationships/coorganizer-events`;
    const reply = await system.call("GET", path, { token: cast.organizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data, [{ type: "event", id: draft.id }]);
    const marketer = await system.call(
      "GET",
      `/v1/users/${cast.owner.id}/relationships/marketer-events`,
      { token: system.admin.token },
    );
    expectStatus(marketer, 200);
    assert.deepEqual(marketer.body.data, []);
    expectError(
      await system.call("GET", `/v1/users/${cast.owner.id}/relationships/owner-events`, {
        token: cast.stranger.token,
      }),
      403,
    );
  });

  await t.step("user documents link to the lists", async () => {
    const reply = await system.call("GET", `/v1/users/${cast.owner.id}`, {
      token: cast.owner.token,
    });
    expectStatus(reply, 200);
    for (const rel of ROLE_LISTS) {
      assert.deepEqual(reply.body.data.relationships[rel].links, {
        self: `/v1/users/${cast.owner.id}/relationships/${rel}`,
        related: `/v1/users/${cast.owner.id}/${rel}`,
      });
    }
  });

  await t.step("a deleted event leaves the lists", async () => {
    const deleted = await system.call("DELETE", `/v1/events/${draft.id}`, {
      token: cast.owner.token,
    });
    expectStatus(deleted, 200);
    assert.deepEqual(ids((await listOf(cast.owner, "owner-events")).data), [event]);
    assert.deepEqual(ids((await listOf(cast.organizer, "coorganizer-events")).data), []);
  });
});

Deno.test("[catalog] include=<role>-events on users: for themselves and admins", async (t) => {
  const { system, cast, draft } = await world();
  await using _ = system;
  const event = cast.event.id;
  const linkage = (user: Resource, rel: string) => ids(user.relationships![rel].data as Resource[]);

  await t.step("GET /v1/users with every role list (the frontend's admin table)", async () => {
    const path = `/v1/users?include=${ROLE_LISTS.join(",")}&page[size]=0`;
    const reply = await system.call("GET", path, { token: system.admin.token });
    expectStatus(reply, 200);
    const owner = byId(reply.body.data, cast.owner.id);
    assert.deepEqual(linkage(owner, "owner-events"), [event, draft.id].sort());
    assert.deepEqual(linkage(owner, "organizer-events"), []);
    const organizer = byId(reply.body.data, cast.organizer.id);
    assert.deepEqual(linkage(organizer, "organizer-events"), [event]);
    assert.deepEqual(linkage(organizer, "coorganizer-events"), [draft.id]);
    const coorganizer = byId(reply.body.data, cast.coorganizer.id);
    assert.deepEqual(linkage(coorganizer, "coorganizer-events"), [event]);
    for (const user of [owner, organizer, coorganizer]) {
      assert.deepEqual(linkage(user, "marketer-events"), []);
    }
    assert.deepEqual(includedOf(reply.body, "event"), [event, draft.id].sort());
  });

  await t.step("a user includes their own, drafts too", async () => {
    const path = `/v1/users/${cast.organizer.id}?include=coorganizer-events,organizer-events`;
    const reply = await system.call("GET", path, { token: cast.organizer.token });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "event"), [event, draft.id].sort());
    assert.deepEqual(linkage(reply.body.data, "coorganizer-events"), [draft.id]);
  });

  await t.step("an event's owner, seen by others: empty linkage, nothing included", async () => {
    const path = `/v1/events/${event}/owner?include=${ROLE_LISTS.join(",")}`;
    const reply = await system.call("GET", path, { token: cast.stranger.token });
    expectStatus(reply, 200);
    for (const rel of ROLE_LISTS) assert.deepEqual(reply.body.data.relationships[rel].data, []);
    assert.deepEqual(reply.body.included ?? [], []);
  });

  await t.step("an event's owner, seen by themselves: their owner-events", async () => {
    const path = `/v1/events/${event}/owner?include=owner-events`;
    const reply = await system.call("GET", path, { token: cast.owner.token });
    expectStatus(reply, 200);
    assert.deepEqual(includedOf(reply.body, "event"), [event, draft.id].sort());
  });
});
