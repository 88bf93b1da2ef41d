import assert from "node:assert/strict";
import {
  type EventCast,
  expectError,
  expectStatus,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";

type Who = "anonymous" | "stranger" | "coorganizer" | "organizer" | "owner" | "admin";
const everyone: Who[] = ["anonymous", "stranger", "coorganizer", "organizer", "owner", "admin"];

function tokenOf(system: TestSystem, cast: EventCast, who: Who): string | undefined {
  if (who === "anonymous") return undefined;
  if (who === "admin") return system.admin.token;
  return cast[who].token;
}

function eventBody(attributes: Record<string, unknown>, relationships?: Record<string, unknown>) {
  const data: Record<string, unknown> = {
    type: "event",
    attributes: {
      name: "Rules",
      "starts-at": "2031-05-01T10:00:00+08:00",
      "ends-at": "2031-05-01T18:00:00+08:00",
      ...attributes,
    },
  };
  if (relationships) data.relationships = relationships;
  return { data };
}

/** Checks one route for every caller against the expected statuses (in `everyone` order). */
async function matrix(
  system: TestSystem,
  cast: EventCast,
  method: string,
  path: string,
  expected: number[],
  body?: (who: Who) => unknown,
) {
  const problems: string[] = [];
  for (const [i, who] of everyone.entries()) {
    const reply = await system.call(method, path, {
      token: tokenOf(system, cast, who),
      body: body?.(who),
    });
    if (reply.status !== expected[i]) {
      problems.push(
        `${who}: expected ${expected[i]}, got ${reply.status} ${reply.text.slice(0, 200)}`,
      );
    }
  }
  assert.deepEqual(problems, [], `${method} ${path}`);
}

async function listedIds(system: TestSystem, path: string, token?: string): Promise<string[]> {
  const reply = await system.call("GET", path, { token });
  expectStatus(reply, 200, path);
  return reply.body.data.map((item: { id: string }) => item.id);
}

Deno.test("[catalog] POST /v1/events makes the creator the owner", async (t) => {
  await using system = await startTestSystem();
  const alice = await system.signUp();

  await t.step("anonymous POST is 401 and creates nothing", async () => {
    expectError(await system.call("POST", "/v1/events", { body: eventBody({}) }), 401);
    const [{ count }] = await system.sql`select count(*)::int as count from events`;
    assert.equal(count, 0);
  });

  await t.step("a logged-in user creates a draft and owns it", async () => {
    const reply = await system.call("POST", "/v1/events", {
      token: alice.token,
      body: eventBody({ name: "Alice's meetup", timezone: "Asia/Singapore" }),
    });
    expectStatus(reply, 201);
    const event = reply.body.data;
    assert.equal(reply.headers.get("Location"), `/v1/events/${event.id}`);
    assert.equal(event.type, "event");
    assert.match(event.attributes.identifier, /^[0-9a-f]{8}$/);
    assert.equal(event.attributes.state, "draft");
    assert.equal(event.attributes.timezone, "Asia/Singapore");
    assert.equal(event.attributes["starts-at"], "2031-05-01T02:00:00.000Z");
    assert.deepEqual(event.relationships.owner.data, { type: "user", id: alice.id });
    const grants = await system.call("GET", `/v1/events/${event.id}/users-events-roles`, {
      token: alice.token,
    });
    expectStatus(grants, 200);
    assert.equal(grants.body.data.length, 1);
    assert.deepEqual(grants.body.data[0].relationships.user.data, { type: "user", id: alice.id });
    assert.deepEqual(grants.body.data[0].relationships.role.data, { type: "role", id: "owner" });
    const owner = await system.call("GET", `/v1/events/${event.id}/owner`, { token: alice.token });
    expectStatus(owner, 200);
    assert.equal(owner.body.data.id, alice.id);
  });

  await t.step("timezone defaults to UTC and state can be published", async () => {
    const reply = await system.call("POST", "/v1/events", {
      token: alice.token,
      body: eventBody({ state: "published", privacy: "private" }),
    });
    expectStatus(reply, 201);
    assert.equal(reply.body.data.attributes.timezone, "UTC");
    assert.equal(reply.body.data.attributes.state, "published");
    assert.equal(reply.body.data.attributes.privacy, "private");
  });

  await t.step("a timezone in another case is stored in its IANA spelling", async () => {
    const spellings = [
      ["utc", "UTC"],
      ["europe/berlin", "Europe/Berlin"],
      ["asia/kolkata", "Asia/Kolkata"],
      ["ASIA/KOLKATA", "Asia/Kolkata"],
      ["Asia/Calcutta", "Asia/Calcutta"],
      ["etc/utc", "Etc/UTC"],
    ];
    for (const [sent, stored] of spellings) {
      const reply = await system.call("POST", "/v1/events", {
        token: alice.token,
        body: eventBody({ timezone: sent }),
      });
      expectStatus(reply, 201);
      const read = await system.call("GET", `/v1/events/${reply.body.data.id}`, {
        token: alice.token,
      });
      assert.equal(read.body.data.attributes.timezone, stored, sent);
    }
  });

  await t.step("a PATCH stores the timezone in its IANA spelling too", async () => {
    const created = await system.call("POST", "/v1/events", {
      token: alice.token,
      body: eventBody({}),
    });
    expectStatus(created, 201);
    const id = created.body.data.id;
    const patched = await system.call("PATCH", `/v1/events/${id}`, {
      token: alice.token,
      body: { data: { type: "event", id, attributes: { timezone: "asia/kolkata" } } },
    });
    expectStatus(patched, 200);
    assert.equal(patched.body.data.attributes.timezone, "Asia/Kolkata");
  });
});

Deno.test("[catalog] /v1/events routes follow the permission matrix", async (t) => {
  await using system = await startTestSystem();
  const topicId = await system.createTopic("Matrix");
  const subTopicId = await system.createSubTopic(topicId, "Matrix sub");
  const topicLinks = {
    "event-topic": { data: { type: "event-topic", id: topicId } },
    "event-sub-topic": { data: { type: "event-sub-topic", id: subTopicId } },
  };
  const draft = await system.eventWithCast({ relationships: topicLinks });
  const published = await system.eventWithCast({
    attributes: { state: "published" },
    relationships: topicLinks,
  });
  await system.createTicket(draft.owner.token, draft.event.id);
  await system.createTicket(published.owner.token, published.event.id);
  const d = `/v1/events/${draft.event.id}`;
  const p = `/v1/events/${published.event.id}`;
  const patch = (cast: EventCast) => (who: Who) => ({
    data: { type: "event", id: cast.event.id, attributes: { description: `by ${who}` } },
  });

  await t.step("a draft is 404 to anonymous and unrelated users, 200 to its people", async () => {
    const hidden = [404, 404, 200, 200, 200, 200];
    for (const rel of ["", "/tickets", "/event-topic", "/event-sub-topic", "/owner"]) {
      await matrix(system, draft, "GET", `${d}${rel}`, hidden);
    }
    for (const rel of ["tickets", "event-topic", "event-sub-topic", "owner"]) {
      await matrix(system, draft, "GET", `${d}/relationships/${rel}`, hidden);
    }
    await matrix(system, draft, "GET", `${d}/users-events-roles`, hidden);
    await matrix(system, draft, "GET", `${d}/relationships/users-events-roles`, hidden);
    await matrix(
      system,
      draft,
      "GET",
      `/v1/events/${draft.event.identifier}`,
      hidden,
    );
  });

  await t.step("a published event is public, its role list is for co-organizers", async () => {
    const open = [200, 200, 200, 200, 200, 200];
    for (const rel of ["", "/tickets", "/event-topic", "/event-sub-topic", "/owner"]) {
      await matrix(system, published, "GET", `${p}${rel}`, open);
    }
    await matrix(system, published, "GET", `${p}/relationships/tickets`, open);
    const team = [401, 403, 200, 200, 200, 200];
    await matrix(system, published, "GET", `${p}/users-events-roles`, team);
    await matrix(system, published, "GET", `${p}/relationships/users-events-roles`, team);
  });

  await t.step(
    "GET reads the caller fresh: admin flags count at once, a deleted user is 401",
    async () => {
      const user = await system.signUp();
      const get = (path: string) => system.call("GET", path, { token: user.token });
      expectError(await get(d), 404);
      for (const flag of ["is_admin", "is_super_admin"]) {
        await system.sql`update users set ${system.sql(flag)} = true where id = ${user.id}`;
        expectStatus(await get(d), 200, `${flag}: a draft`);
        expectError(await get(`${p}?get_trashed=true&include=nonsense`), 400);
        await system.sql`update users set ${system.sql(flag)} = false where id = ${user.id}`;
        expectError(await get(d), 404);
      }
      await system.sql`update users set deleted_at = now() where id = ${user.id}`;
      for (const path of [p, d, `${p}?include=nonsense`, "/v1/events/99999999", "/v1/events/zz"]) {
        assert.equal((await get(path)).status, 401, path);
      }
    },
  );

  await t.step("PATCH: co-organizers and admins; a draft stays hidden from others", async () => {
    await matrix(system, published, "PATCH", p, [401, 403, 200, 200, 200, 200], patch(published));
    await matrix(system, draft, "PATCH", d, [404, 404, 200, 200, 200, 200], patch(draft));
    const [row] = await system.sql`select description from events where id = ${published.event.id}`;
    assert.equal(row.description, "by admin");
  });

  await t.step("POST /v1/events: anonymous 401, everyone else 201", async () => {
    await matrix(
      system,
      published,
      "POST",
      "/v1/events",
      [401, 201, 201, 201, 201, 201],
      () => eventBody({}),
    );
  });

  await t.step("DELETE: anonymous 401, stranger 403, each co-organizer level 200", async () => {
    expectError(await system.call("DELETE", p), 401);
    expectError(await system.call("DELETE", p, { token: published.stranger.token }), 403);
    expectError(await system.call("DELETE", d, { token: draft.stranger.token }), 404);
    const [live] = await system.sql`select deleted_at from events where id = ${published.event.id}`;
    assert.equal(live.deleted_at, null);
    for (const role of ["coorganizer", "organizer", "owner", "admin"] as const) {
      const event = await system.createEvent(published.owner.token, {
        attributes: { state: "published" },
      });
      if (role === "coorganizer" || role === "organizer") {
        await system.grantRole(published.owner.token, {
          userId: published[role].id,
          eventId: event.id,
          role,
        });
      }
      const token = role === "admin" ? system.admin.token : published[role].token;
      const reply = await system.call("DELETE", `/v1/events/${event.id}`, { token });
      expectStatus(reply, 200, role);
      assert.deepEqual(reply.body.meta, { message: "Object successfully deleted" });
      expectError(await system.call("GET", `/v1/events/${event.id}`, { token }), 404);
      assert.ok(!(await listedIds(system, "/v1/events?page[size]=0", token)).includes(event.id));
    }
  });

  await t.step(
    "?permanent=true is for admins only; ?get_trashed=true shows to admins",
    async () => {
      const event = await system.createEvent(published.owner.token, {
        attributes: { state: "published" },
        relationships: topicLinks,
      });
      const path = `/v1/events/${event.id}`;
      expectError(
        await system.call("DELETE", `${path}?permanent=true`, { token: published.owner.token }),
        403,
      );
      expectStatus(await system.call("DELETE", path, { token: published.owner.token }), 200);
      const row = await system.sql`select deleted_at from events where id = ${event.id}`;
      assert.equal(row.length, 1);
      assert.notEqual(row[0].deleted_at, null);
      expectError(
        await system.call("GET", `${path}?get_trashed=true`, { token: published.owner.token }),
        404,
      );
      const trashed = await system.call("GET", `${path}?get_trashed=true`, {
        token: system.admin.token,
      });
      expectStatus(trashed, 200);
      assert.notEqual(trashed.body.data.attributes["deleted-at"], null);
      assert.ok(
        (await listedIds(system, "/v1/events?get_trashed=true&page[size]=0", system.admin.token))
          .includes(event.id),
      );
      assert.ok(
        !(await listedIds(
          system,
          "/v1/events?get_trashed=true&page[size]=0",
          published.owner.token,
        ))
          .includes(event.id),
      );
      // Every list of events takes it alike: a user's, a topic's and a sub-topic's.
      for (
        const list of [
          `/v1/users/${published.owner.id}/events`,
          `/v1/users/${published.owner.id}/owner-events`,
          `/v1/event-topics/${topicId}/events`,
          `/v1/event-sub-topics/${subTopicId}/events`,
        ]
      ) {
        const trashedList = `${list}?get_trashed=true&page[size]=0`;
        assert.ok((await listedIds(system, trashedList, system.admin.token)).includes(event.id));
        const plain = await listedIds(system, `${list}?page[size]=0`, system.admin.token);
        assert.ok(!plain.includes(event.id), list);
        const owner = await listedIds(system, trashedList, published.owner.token);
        assert.ok(!owner.includes(event.id), `${list}: the owner is no admin`);
      }
      const gone = await system.createEvent(published.owner.token);
      // A purge asked in another spelling is refused, not turned into a soft delete.
      const misspelt = await system.call("DELETE", `/v1/events/${gone.id}?permanent=yes`, {
        token: system.admin.token,
      });
      expectError(misspelt, 400);
      assert.equal(misspelt.body.errors[0].source.parameter, "permanent");
      const kept = await system.sql`select deleted_at from events where id = ${gone.id}`;
      assert.deepEqual(kept.map((row) => row.deleted_at), [null]);
      expectStatus(
        await system.call("DELETE", `/v1/events/${gone.id}?permanent=true`, {
          token: system.admin.token,
        }),
        200,
      );
      assert.equal((await system.sql`select 1 from events where id = ${gone.id}`).length, 0);
    },
  );

  await t.step("drafts are absent from every list for anonymous and unrelated users", async () => {
    const lists = [
      "/v1/events?page[size]=0",
      `/v1/event-topics/${topicId}/events?page[size]=0`,
      `/v1/event-sub-topics/${subTopicId}/events?page[size]=0`,
    ];
    for (const path of lists) {
      for (const who of everyone) {
        const ids = await listedIds(system, path, tokenOf(system, draft, who));
        const sees = !["anonymous", "stranger"].includes(who);
        assert.equal(ids.includes(draft.event.id), sees, `${who} ${path}`);
        assert.ok(ids.includes(published.event.id), `${who} ${path} misses the published one`);
      }
    }
    for (
      const path of [
        `/v1/event-topics/${topicId}/relationships/events`,
        `/v1/event-sub-topics/${subTopicId}/relationships/events`,
      ]
    ) {
      for (const who of everyone) {
        const ids = await listedIds(system, path, tokenOf(system, draft, who));
        const sees = !["anonymous", "stranger"].includes(who);
        assert.equal(ids.includes(draft.event.id), sees, `${who} ${path}`);
      }
    }
  });

  await t.step("a draft's count is not leaked through meta.count", async () => {
    const anon = await system.call("GET", `/v1/event-topics/${topicId}/events`);
    expectStatus(anon, 200);
    assert.equal(anon.body.meta.count, anon.body.data.length);
    assert.ok(
      anon.body.data.every((e: { attributes: { state: string } }) =>
        e.attributes.state === "published"
      ),
    );
  });

  await t.step("a draft is not reached through a ticket or a role", async () => {
    const [ticket] = await system.sql`select id from tickets where event_id = ${draft.event.id}`;
    const name = draft.event.resource.attributes.name;
    for (
      const path of [
        `/v1/tickets/${ticket.id}?include=event`,
        `/v1/tickets/${ticket.id}/event`,
        `/v1/users-events-roles/${draft.grants.organizer}?include=event`,
        `/v1/users-events-roles/${draft.grants.organizer}/event`,
      ]
    ) {
      for (const who of ["anonymous", "stranger"] as const) {
        const reply = await system.call("GET", path, { token: tokenOf(system, draft, who) });
        assert.ok([401, 403, 404].includes(reply.status), `${who} ${path}: ${reply.status}`);
        assert.ok(!reply.text.includes(name), `${who} ${path} shows the draft`);
      }
    }
  });
});

Deno.test("[catalog] an event's identifier works wherever its id does", async (t) => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const { id, identifier } = cast.event;
  const token = cast.owner.token;

  await t.step("GET, related and relationship routes", async () => {
    for (
      const rel of [
        "",
        "/tickets",
        "/owner",
        "/users-events-roles",
        "/relationships/tickets",
        "/relationships/owner",
        "/relationships/users-events-roles",
      ]
    ) {
      const byId = await system.call("GET", `/v1/events/${id}${rel}`, { token });
      const byIdentifier = await system.call("GET", `/v1/events/${identifier}${rel}`, { token });
      expectStatus(byIdentifier, 200, rel);
      assert.deepEqual(byIdentifier.body.data, byId.body.data, rel);
    }
  });

  await t.step("PATCH with data.id as the id or as the identifier", async () => {
    for (const bodyId of [id, identifier]) {
      const reply = await system.call("PATCH", `/v1/events/${identifier}`, {
        token,
        body: { data: { type: "event", id: bodyId, attributes: { name: `Via ${bodyId}` } } },
      });
      expectStatus(reply, 200, `data.id ${bodyId}`);
      assert.equal(reply.body.data.id, id);
      assert.equal(reply.body.data.attributes.name, `Via ${bodyId}`);
    }
  });

  await t.step("a ticket and a role can name the event by identifier", async () => {
    await system.createTicket(token, identifier);
    const someone = await system.signUp();
    await system.grantRole(token, { userId: someone.id, eventId: identifier, role: "coorganizer" });
    const [{ count }] = await system.sql`select count(*)::int as count from users_events_roles
      where event_id = ${id} and user_id = ${someone.id}`;
    assert.equal(count, 1);
  });

  await t.step("DELETE by identifier", async () => {
    expectStatus(await system.call("DELETE", `/v1/events/${identifier}`, { token }), 200);
    expectError(await system.call("GET", `/v1/events/${id}`, { token }), 404);
  });
});

/**
 * Makes the next `times` draws of four random bytes (an event identifier's) the same `bytes`,
 * so that two events draw one identifier; returns the restore.
 */
function drawIdentifierBytes(bytes: number[], times: number): () => void {
  const real = crypto.getRandomValues;
  let left = times;
  crypto.getRandomValues = function <T extends ArrayBufferView | null>(array: T): T {
    if (left > 0 && array instanceof Uint8Array && array.length === 4) {
      left--;
      array.set(bytes);
      return array;
    }
    return real.call(crypto, array as ArrayBufferView) as T;
  } as typeof crypto.getRandomValues;
  return () => {
    crypto.getRandomValues = real;
  };
}

Deno.test("[catalog] POST /v1/events draws another identifier when one is taken", async () => {
  // 8 hex characters collide now and then among many events; the original drew again until it
  // found a free one (app/models/event.py get_new_event_identifier), here the creator got a 409
  // "the object already exists" for an event that did not.
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const restore = drawIdentifierBytes([0xab, 0xcd, 0xef, 0x01], 2);
  try {
    const first = await system.createEvent(owner.token);
    const second = await system.call("POST", "/v1/events", {
      token: owner.token,
      body: eventBody({ name: "Second" }),
    });
    expectStatus(second, 201);
    assert.match(second.body.data.attributes.identifier, /^[a-f][0-9a-f]{7}$/);
    assert.notEqual(second.body.data.attributes.identifier, first.identifier);
    const [{ count }] = await system.sql`select count(*)::int as count from users_events_roles
      where event_id = ${second.body.data.id} and role_name = 'owner'`;
    assert.equal(count, 1);
  } finally {
    restore();
  }
});

Deno.test("[catalog] a revoked role takes effect on the next request", async () => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast();
  const path = `/v1/events/${cast.event.id}`;
  const token = cast.coorganizer.token;
  expectStatus(await system.call("GET", path, { token }), 200);
  expectStatus(
    await system.call("DELETE", `/v1/users-events-roles/${cast.grants.coorganizer}`, {
      token: cast.organizer.token,
    }),
    200,
  );
  expectError(await system.call("GET", path, { token }), 404);
  expectError(
    await system.call("PATCH", path, {
      token,
      body: { data: { type: "event", id: cast.event.id, attributes: { name: "Mine now" } } },
    }),
    404,
  );
  await system.call("PATCH", path, {
    token: cast.owner.token,
    body: { data: { type: "event", id: cast.event.id, attributes: { state: "published" } } },
  });
  expectError(
    await system.call("PATCH", path, {
      token,
      body: { data: { type: "event", id: cast.event.id, attributes: { name: "Mine now" } } },
    }),
    403,
  );
});

Deno.test("[catalog] POST and PATCH /v1/events check the event rules", async (t) => {
  await using system = await startTestSystem();
  const alice = await system.signUp();
  const token = alice.token;
  const count = async () => (await system.sql`select count(*)::int as count from events`)[0].count;

  await t.step("ends-at must be after starts-at (422 at /data/attributes/ends-at)", async () => {
    const before = await count();
    for (
      const ends of [
        "2031-05-01T09:00:00+08:00",
        "2031-05-01T10:00:00+08:00",
        "2031-05-01T02:00:00Z",
      ]
    ) {
      expectError(
        await system.call("POST", "/v1/events", { token, body: eventBody({ "ends-at": ends }) }),
        422,
        { pointer: "/data/attributes/ends-at" },
        ends,
      );
    }
    assert.equal(await count(), before);
  });

  await t.step("PATCH checks the merged state", async () => {
    const event = await system.createEvent(token, {
      attributes: { "starts-at": "2031-06-01T10:00:00Z", "ends-at": "2031-06-01T12:00:00Z" },
    });
    const path = `/v1/events/${event.id}`;
    const body = (attributes: Record<string, unknown>) => ({
      data: { type: "event", id: event.id, attributes },
    });
    expectError(
      await system.call("PATCH", path, {
        token,
        body: body({ "ends-at": "2031-06-01T09:00:00Z" }),
      }),
      422,
      { pointer: "/data/attributes/ends-at" },
    );
    expectError(
      await system.call("PATCH", path, {
        token,
        body: body({ "starts-at": "2031-06-01T13:00:00Z" }),
      }),
      422,
      { pointer: "/data/attributes/ends-at" },
    );
    const [row] = await system.sql`select starts_at, ends_at from events where id = ${event.id}`;
    assert.equal(row.starts_at.toISOString(), "2031-06-01T10:00:00.000Z");
    assert.equal(row.ends_at.toISOString(), "2031-06-01T12:00:00.000Z");
    expectStatus(
      await system.call("PATCH", path, {
        token,
        body: body({ "starts-at": "2031-06-01T11:00:00Z" }),
      }),
      200,
    );
  });

  await t.step("an unknown timezone is 422", async () => {
    for (const timezone of ["Mars/Olympus_Mons", "", "UTC+99"]) {
      expectError(
        await system.call("POST", "/v1/events", { token, body: eventBody({ timezone }) }),
        422,
        { pointer: "/data/attributes/timezone" },
        timezone,
      );
    }
    const event = await system.createEvent(token);
    expectError(
      await system.call("PATCH", `/v1/events/${event.id}`, {
        token,
        body: { data: { type: "event", id: event.id, attributes: { timezone: "Nowhere/Town" } } },
      }),
      422,
      { pointer: "/data/attributes/timezone" },
    );
  });

  await t.step("a date-time without a timezone is 422", async () => {
    for (const value of ["2031-05-01T10:00:00", "2031-05-01", "tomorrow", 1900000000]) {
      expectError(
        await system.call("POST", "/v1/events", {
          token,
          body: eventBody({ "starts-at": value }),
        }),
        422,
        { pointer: "/data/attributes/starts-at" },
        String(value),
      );
    }
  });

  await t.step(
    "an offset without a colon (+0530, +05) is read as the original read it",
    async () => {
      const reply = await system.call("POST", "/v1/events", {
        token,
        body: eventBody({
          "starts-at": "2031-05-01T10:00:00+0530",
          "ends-at": "2031-05-01T18:00:00+05",
        }),
      });
      expectStatus(reply, 201);
      const { id } = reply.body.data;
      const read = await system.call("GET", `/v1/events/${id}`, { token });
      assert.equal(
        Date.parse(read.body.data.attributes["starts-at"]),
        Date.parse("2031-05-01T04:30Z"),
      );
      assert.equal(
        Date.parse(read.body.data.attributes["ends-at"]),
        Date.parse("2031-05-01T13:00Z"),
      );
    },
  );

  await t.step("name is required; state and privacy are enums", async () => {
    expectError(
      await system.call("POST", "/v1/events", { token, body: eventBody({ name: undefined }) }),
      422,
      { pointer: "/data/attributes/name" },
    );
    expectError(
      await system.call("POST", "/v1/events", { token, body: eventBody({ name: "   " }) }),
      422,
      { pointer: "/data/attributes/name" },
    );
    expectError(
      await system.call("POST", "/v1/events", { token, body: eventBody({ state: "live" }) }),
      422,
      { pointer: "/data/attributes/state" },
    );
    expectError(
      await system.call("POST", "/v1/events", { token, body: eventBody({ privacy: "secret" }) }),
      422,
      { pointer: "/data/attributes/privacy" },
    );
  });

  await t.step("the sub-topic must belong to the topic (422)", async () => {
    const science = await system.createTopic("Science");
    const art = await system.createTopic("Art");
    const physics = await system.createSubTopic(science, "Physics");
    const rel = (topic: string | null, sub: string) => ({
      ...(topic && { "event-topic": { data: { type: "event-topic", id: topic } } }),
      "event-sub-topic": { data: { type: "event-sub-topic", id: sub } },
    });
    const before = await count();
    expectError(
      await system.call("POST", "/v1/events", { token, body: eventBody({}, rel(art, physics)) }),
      422,
      { pointer: "/data/relationships/event-sub-topic" },
    );
    assert.equal(await count(), before);
    const ok = await system.call("POST", "/v1/events", {
      token,
      body: eventBody({}, rel(science, physics)),
    });
    expectStatus(ok, 201);
    const onArt = await system.createEvent(token, {
      relationships: { "event-topic": { data: { type: "event-topic", id: art } } },
    });
    expectError(
      await system.call("PATCH", `/v1/events/${onArt.id}`, {
        token,
        body: { data: { type: "event", id: onArt.id, relationships: rel(null, physics) } },
      }),
      422,
      { pointer: "/data/relationships/event-sub-topic" },
    );
    expectError(
      await system.call("POST", "/v1/events", {
        token,
        body: eventBody({}, rel("987654321", physics)),
      }),
      422,
      { pointer: "/data/relationships/event-topic" },
    );
  });

  await t.step("read-only attributes cannot be set by clients", async () => {
    const reply = await system.call("POST", "/v1/events", {
      token,
      body: eventBody({ identifier: "deadbeef", "is-stripe-linked": true }),
    });
    // Either refused, or the server's values win.
    if (reply.status === 201) {
      assert.notEqual(reply.body.data.attributes.identifier, "deadbeef");
      assert.equal(reply.body.data.attributes["is-stripe-linked"], false);
    } else {
      expectError(reply, 422);
    }
  });
});

Deno.test("[catalog] dates outside Postgres' years are a 422 pointing at the attribute", async () => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const reply = await system.call("POST", "/v1/events", {
    token: user.token,
    body: {
      data: {
        type: "event",
        attributes: {
          name: "Too early",
          "starts-at": "0000-01-01T00:00:00Z",
          "ends-at": "2030-01-01T00:00:00Z",
        },
      },
    },
  });
  expectError(reply, 422, { pointer: "/data/attributes/starts-at" });
});

Deno.test("[catalog] a PATCH of the event as it was read, owner included, is accepted", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const other = await system.signUp();
  const event = await system.createEvent(owner.token);
  const path = `/v1/events/${event.id}`;
  const read = await system.call("GET", path, { token: owner.token });
  // What Ember Data saves: every attribute and relationship it read, `owner` among them.
  const asRead = (owner: unknown) => ({
    data: {
      type: "event",
      id: event.id,
      attributes: { name: "Renamed" },
      relationships: { owner: { data: owner } },
    },
  });
  await t.step("the owner sent back unchanged, or null: 200, nothing else changes", async () => {
    assert.deepEqual(read.body.data.relationships.owner.data, { type: "user", id: owner.id });
    for (const sent of [{ type: "user", id: owner.id }, null]) {
      const reply = await system.call("PATCH", path, { token: owner.token, body: asRead(sent) });
      expectStatus(reply, 200);
      assert.deepEqual(reply.body.data.relationships.owner.data, { type: "user", id: owner.id });
    }
  });
  await t.step("another owner: 422 pointing at it (owners are granted as roles)", async () => {
    const body = asRead({ type: "user", id: other.id });
    expectError(await system.call("PATCH", path, { token: owner.token, body }), 422, {
      pointer: "/data/relationships/owner",
    });
  });
  await t.step("relationships the frontend's model has and ours does not: ignored", async () => {
    // open-event-frontend's event model has organizers, moderators... (hasMany, inverse null),
    // which ember-data serializes on save; the original stored or ignored them, never refused.
    const body = asRead(null);
    Object.assign(body.data.relationships, {
      organizers: { data: [{ type: "user", id: other.id }] },
      moderators: { data: [] },
      "event-type": { data: null },
    });
    const reply = await system.call("PATCH", path, { token: owner.token, body });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.relationships.organizers, undefined);
    const roles = await system.call("GET", `${path}/users-events-roles`, { token: owner.token });
    assert.equal(roles.body.data.length, 1, "nobody became an organizer");
  });
  await t.step("the Stripe authorization and event code as read: accepted, ignored", async () => {
    // The frontend's wizard sends the authorization it connected on every later save.
    const body = asRead(null);
    Object.assign(body.data.relationships, {
      "stripe-authorization": { data: { type: "stripe-authorization", id: "1" } },
      "discount-code": { data: null },
    });
    const reply = await system.call("PATCH", path, { token: owner.token, body });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["is-stripe-linked"], false, "no link made");
  });
  await t.step("a relationship of ours that is read-only here: still 422", async () => {
    const body = asRead(null);
    Object.assign(body.data.relationships, { tickets: { data: [] } });
    expectError(await system.call("PATCH", path, { token: owner.token, body }), 422, {
      pointer: "/data/relationships/tickets",
    });
  });
});

Deno.test("[catalog] years 1–99 come back as they were stored", async () => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  // JavaScript's date parser read Postgres' "0005-03-01 ..." as 2001-05-03, and years 13–31 as
  // an invalid date (500).
  for (const startsAt of ["0005-03-01T00:00:00.000Z", "0020-01-01T00:00:00.000Z"]) {
    const reply = await system.call("POST", "/v1/events", {
      token: user.token,
      body: {
        data: {
          type: "event",
          attributes: { name: "Ancient", "starts-at": startsAt, "ends-at": "2030-01-01T00:00:00Z" },
        },
      },
    });
    expectStatus(reply, 201, startsAt);
    assert.equal(reply.body.data.attributes["starts-at"], startsAt);
    const read = await system.call("GET", `/v1/events/${reply.body.data.id}`, {
      token: user.token,
    });
    assert.equal(read.body.data.attributes["starts-at"], startsAt);
  }
});

Deno.test("[catalog] an admin restores a soft-deleted event with deleted-at null", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { state: "published" } });
  const path = `/v1/events/${event.id}`;
  const restore = { data: { type: "event", id: event.id, attributes: { "deleted-at": null } } };
  expectStatus(await system.call("DELETE", path, { token: owner.token }), 200);

  await t.step("only an admin reaches it, with ?get_trashed=true", async () => {
    expectError(await system.call("PATCH", path, { token: owner.token, body: restore }), 404);
    expectError(
      await system.call("PATCH", path, { token: system.admin.token, body: restore }),
      404,
    );
  });
  await t.step("the admin's PATCH restores it: 200, visible again, announced", async () => {
    const before = (await system.readFacts()).length;
    const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
      token: system.admin.token,
      body: restore,
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["deleted-at"], null);
    expectStatus(await system.call("GET", path), 200);
    const facts = (await system.readFacts()).slice(before);
    assert.deepEqual(facts.map((fact) => fact.type), ["catalog.event.updated"]);
  });
  await t.step("deleted-at sent back on a live event changes nothing", async () => {
    const reply = await system.call("PATCH", path, {
      token: owner.token,
      body: {
        data: { type: "event", id: event.id, attributes: { "deleted-at": "2020-01-01T00:00:00Z" } },
      },
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["deleted-at"], null);
  });
});

Deno.test("[catalog] a restored event that has started comes back as a draft", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const admin = { token: system.admin.token };
  // The original's Restore made an event whose start had passed a draft again (its organizers
  // see it and publish it anew); it must not reappear in public lists by itself.
  const restored = async (startsAt: Date) => {
    const endsAt = new Date(startsAt.getTime() + 4 * 3600_000);
    const event = await system.createEvent(owner.token, {
      attributes: {
        state: "published",
        "starts-at": startsAt.toISOString(),
        "ends-at": endsAt.toISOString(),
      },
    });
    const path = `/v1/events/${event.id}`;
    expectStatus(await system.call("DELETE", path, { token: owner.token }), 200);
    const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
      ...admin,
      body: { data: { type: "event", id: event.id, attributes: { "deleted-at": null } } },
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["deleted-at"], null);
    return { path, state: reply.body.data.attributes.state };
  };

  await t.step("one that started an hour ago: a draft, hidden from the public", async () => {
    const { path, state } = await restored(new Date(Date.now() - 3600_000));
    assert.equal(state, "draft");
    expectError(await system.call("GET", path), 404);
    expectStatus(await system.call("GET", path, { token: owner.token }), 200);
  });
  await t.step("one still to come: published, as it was", async () => {
    const { path, state } = await restored(new Date(Date.now() + 24 * 3600_000));
    assert.equal(state, "published");
    expectStatus(await system.call("GET", path), 200);
  });
});
