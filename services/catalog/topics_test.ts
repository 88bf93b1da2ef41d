import assert from "node:assert/strict";
import { expectError, expectStatus, inTopic, startTestSystem } from "@testing/system.ts";
import { holdTransaction, untilWaitingForLocks } from "@testing/table_lock.ts";

function topicBody(attributes: Record<string, unknown>, id?: string) {
  return { data: { type: "event-topic", ...(id && { id }), attributes } };
}

function subTopicBody(name: string, topicId?: string, id?: string) {
  return {
    data: {
      type: "event-sub-topic",
      ...(id && { id }),
      attributes: { name },
      ...(topicId && {
        relationships: { "event-topic": { data: { type: "event-topic", id: topicId } } },
      }),
    },
  };
}

Deno.test("[catalog] /v1/event-topics: public reads, admin writes, slugs", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const admin = system.admin.token;
  let topicId = "";

  await t.step("POST: anonymous 401, user 403, admin 201 with a slug from the name", async () => {
    const body = topicBody({
      name: "Science & Tech!",
      "system-image-url": "https://example.test/a.png",
    });
    expectError(await system.call("POST", "/v1/event-topics", { body }), 401);
    expectError(await system.call("POST", "/v1/event-topics", { token: user.token, body }), 403);
    const [{ count }] = await system.sql`select count(*)::int as count from event_topics`;
    assert.equal(count, 0);
    const reply = await system.call("POST", "/v1/event-topics", { token: admin, body });
    expectStatus(reply, 201);
    topicId = reply.body.data.id;
    assert.equal(reply.headers.get("Location"), `/v1/event-topics/${topicId}`);
    assert.equal(reply.body.data.attributes.slug, "science-tech");
    assert.equal(reply.body.data.attributes["system-image-url"], "https://example.test/a.png");
  });

  await t.step("system-image-url takes the schemes the original's fields.Url took", async () => {
    for (const [i, url] of ["ftp://example.test/b.png", "FTPS://example.test/c.png"].entries()) {
      const reply = await system.call("POST", "/v1/event-topics", {
        token: admin,
        body: topicBody({ name: `Archive ${i}`, "system-image-url": url }),
      });
      expectStatus(reply, 201);
    }
    for (const url of ["javascript:alert(1)", "file:///etc/passwd", "/relative.png"]) {
      const reply = await system.call("POST", "/v1/event-topics", {
        token: admin,
        body: topicBody({ name: "Refused", "system-image-url": url }),
      });
      expectError(reply, 422, { pointer: "/data/attributes/system-image-url" }, url);
    }
  });

  await t.step("the slug is read-only", async () => {
    const reply = await system.call("POST", "/v1/event-topics", {
      token: admin,
      body: topicBody({ name: "Music", slug: "not-music" }),
    });
    if (reply.status === 201) assert.equal(reply.body.data.attributes.slug, "music");
    else expectError(reply, 422);
  });

  await t.step("a duplicate slug is 409, on POST and on PATCH", async () => {
    expectError(
      await system.call("POST", "/v1/event-topics", {
        token: admin,
        body: topicBody({ name: "science  TECH" }),
      }),
      409,
    );
    const other = await system.createTopic("Other things");
    expectError(
      await system.call("PATCH", `/v1/event-topics/${other}`, {
        token: admin,
        body: topicBody({ name: "Science Tech" }, other),
      }),
      409,
    );
  });

  await t.step("a bad image URL or an empty name is 422", async () => {
    expectError(
      await system.call("POST", "/v1/event-topics", {
        token: admin,
        body: topicBody({ name: "Pics", "system-image-url": "javascript:alert(1)" }),
      }),
      422,
      { pointer: "/data/attributes/system-image-url" },
    );
    expectError(
      await system.call("POST", "/v1/event-topics", { token: admin, body: topicBody({}) }),
      422,
      { pointer: "/data/attributes/name" },
    );
    expectError(
      await system.call("POST", "/v1/event-topics", {
        token: admin,
        body: topicBody({ name: "!!!" }),
      }),
      422,
      { pointer: "/data/attributes/name" },
    );
  });

  await t.step("GET is public", async () => {
    for (const token of [undefined, user.token, admin]) {
      expectStatus(await system.call("GET", `/v1/event-topics/${topicId}`, { token }), 200);
      const list = await system.call("GET", "/v1/event-topics", { token });
      expectStatus(list, 200);
      assert.ok(list.body.data.some((topic: { id: string }) => topic.id === topicId));
    }
  });

  await t.step("PATCH: user 403, admin 200 and only the keys sent change", async () => {
    const body = topicBody({ name: "Science and Technology" }, topicId);
    expectError(await system.call("PATCH", `/v1/event-topics/${topicId}`, { body }), 401);
    expectError(
      await system.call("PATCH", `/v1/event-topics/${topicId}`, { token: user.token, body }),
      403,
    );
    const reply = await system.call("PATCH", `/v1/event-topics/${topicId}`, { token: admin, body });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes.slug, "science-and-technology");
    assert.equal(reply.body.data.attributes["system-image-url"], "https://example.test/a.png");
  });

  await t.step("DELETE: user 403; admin soft-deletes and the topic disappears", async () => {
    const doomed = await system.createTopic("Doomed");
    expectError(await system.call("DELETE", `/v1/event-topics/${doomed}`), 401);
    expectError(
      await system.call("DELETE", `/v1/event-topics/${doomed}`, { token: user.token }),
      403,
    );
    const reply = await system.call("DELETE", `/v1/event-topics/${doomed}`, { token: admin });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.meta, { message: "Object successfully deleted" });
    expectError(await system.call("GET", `/v1/event-topics/${doomed}`), 404);
    expectError(await system.call("GET", `/v1/event-topics/${doomed}`, { token: admin }), 404);
    const list = await system.call("GET", "/v1/event-topics?page[size]=0");
    assert.ok(!list.body.data.some((topic: { id: string }) => topic.id === doomed));
    const [row] = await system.sql`select deleted_at from event_topics where id = ${doomed}`;
    assert.notEqual(row.deleted_at, null);
  });

  await t.step("?get_trashed=true shows soft-deleted topics to admins only", async () => {
    const [row] = await system.sql`select id from event_topics where slug = 'doomed'`;
    const doomed = String(row.id);
    const byAdmin = await system.call("GET", `/v1/event-topics/${doomed}?get_trashed=true`, {
      token: admin,
    });
    expectStatus(byAdmin, 200);
    assert.notEqual(byAdmin.body.data.attributes["deleted-at"], null);
    const adminList = await system.call("GET", "/v1/event-topics?get_trashed=true&page[size]=0", {
      token: admin,
    });
    assert.ok(adminList.body.data.some((topic: { id: string }) => topic.id === doomed));
    for (const token of [undefined, user.token]) {
      expectError(
        await system.call("GET", `/v1/event-topics/${doomed}?get_trashed=true`, { token }),
        404,
      );
      const list = await system.call("GET", "/v1/event-topics?get_trashed=true&page[size]=0", {
        token,
      });
      expectStatus(list, 200);
      assert.ok(!list.body.data.some((topic: { id: string }) => topic.id === doomed));
    }
  });

  await t.step("a soft-deleted topic's slug can be used again", async () => {
    expectStatus(
      await system.call("POST", "/v1/event-topics", {
        token: admin,
        body: topicBody({ name: "Doomed" }),
      }),
      201,
    );
  });

  await t.step("?permanent=true: admin only, and the row is gone", async () => {
    const gone = await system.createTopic("Gone for good");
    expectError(
      await system.call("DELETE", `/v1/event-topics/${gone}?permanent=true`, {
        token: user.token,
      }),
      403,
    );
    expectStatus(
      await system.call("DELETE", `/v1/event-topics/${gone}?permanent=true`, { token: admin }),
      200,
    );
    assert.equal((await system.sql`select 1 from event_topics where id = ${gone}`).length, 0);
  });
});

Deno.test("[catalog] /v1/event-sub-topics: admin writes under a topic", async (t) => {
  await using system = await startTestSystem();
  const user = await system.signUp();
  const admin = system.admin.token;
  const topicId = await system.createTopic("Science");
  const otherTopic = await system.createTopic("Arts");
  let subId = "";

  await t.step("POST: user 403; admin 201; event-topic is required (422)", async () => {
    const body = subTopicBody("Quantum Physics", topicId);
    expectError(await system.call("POST", "/v1/event-sub-topics", { body }), 401);
    expectError(
      await system.call("POST", "/v1/event-sub-topics", { token: user.token, body }),
      403,
    );
    expectError(
      await system.call("POST", "/v1/event-sub-topics", {
        token: admin,
        body: subTopicBody("Orphan"),
      }),
      422,
      { pointer: "/data/relationships/event-topic" },
    );
    expectError(
      await system.call("POST", "/v1/event-sub-topics", {
        token: admin,
        body: subTopicBody("Orphan", "987654321"),
      }),
      422,
      { pointer: "/data/relationships/event-topic" },
    );
    const reply = await system.call("POST", "/v1/event-sub-topics", { token: admin, body });
    expectStatus(reply, 201);
    subId = reply.body.data.id;
    assert.equal(reply.headers.get("Location"), `/v1/event-sub-topics/${subId}`);
    assert.equal(reply.body.data.attributes.slug, "quantum-physics");
    assert.deepEqual(reply.body.data.relationships["event-topic"].data, {
      type: "event-topic",
      id: topicId,
    });
  });

  await t.step("the same slug is 409 under one topic, fine under another", async () => {
    expectError(
      await system.call("POST", "/v1/event-sub-topics", {
        token: admin,
        body: subTopicBody("Quantum  physics", topicId),
      }),
      409,
    );
    expectStatus(
      await system.call("POST", "/v1/event-sub-topics", {
        token: admin,
        body: subTopicBody("Quantum Physics", otherTopic),
      }),
      201,
    );
  });

  await t.step("reads are public: by id, under the topic, its topic", async () => {
    for (const token of [undefined, user.token]) {
      expectStatus(await system.call("GET", `/v1/event-sub-topics/${subId}`, { token }), 200);
      const list = await system.call("GET", `/v1/event-topics/${topicId}/event-sub-topics`, {
        token,
      });
      expectStatus(list, 200);
      assert.deepEqual(list.body.data.map((s: { id: string }) => s.id), [subId]);
      const topic = await system.call("GET", `/v1/event-sub-topics/${subId}/event-topic`, {
        token,
      });
      expectStatus(topic, 200);
      assert.equal(topic.body.data.id, topicId);
      const linkage = await system.call(
        "GET",
        `/v1/event-sub-topics/${subId}/relationships/event-topic`,
        { token },
      );
      expectStatus(linkage, 200);
      assert.deepEqual(linkage.body.data, { type: "event-topic", id: topicId });
    }
  });

  await t.step("an event's sub-topic is reachable from the event", async () => {
    const owner = await system.signUp();
    const event = await system.createEvent(owner.token, {
      attributes: { state: "published" },
      relationships: inTopic(topicId, subId),
    });
    const reply = await system.call("GET", `/v1/events/${event.id}/event-sub-topic`);
    expectStatus(reply, 200);
    assert.equal(reply.body.data.id, subId);
    const topic = await system.call("GET", `/v1/events/${event.id}/event-topic`);
    expectStatus(topic, 200);
    assert.equal(topic.body.data.id, topicId);
  });

  await t.step("PATCH and DELETE: user 403, admin 200", async () => {
    const body = subTopicBody("Particle Physics", undefined, subId);
    expectError(
      await system.call("PATCH", `/v1/event-sub-topics/${subId}`, { token: user.token, body }),
      403,
    );
    const reply = await system.call("PATCH", `/v1/event-sub-topics/${subId}`, {
      token: admin,
      body,
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes.slug, "particle-physics");
    assert.deepEqual(reply.body.data.relationships["event-topic"].data, {
      type: "event-topic",
      id: topicId,
    });
    expectError(
      await system.call("DELETE", `/v1/event-sub-topics/${subId}`, { token: user.token }),
      403,
    );
    expectStatus(
      await system.call("DELETE", `/v1/event-sub-topics/${subId}`, { token: admin }),
      200,
    );
    expectError(await system.call("GET", `/v1/event-sub-topics/${subId}`), 404);
    const list = await system.call("GET", `/v1/event-topics/${topicId}/event-sub-topics`);
    assert.deepEqual(list.body.data, []);
  });

  await t.step("a soft-deleted topic takes its sub-topics along", async () => {
    const doomed = await system.createTopic("Doomed topic");
    const child = await system.createSubTopic(doomed, "Child");
    expectStatus(await system.call("DELETE", `/v1/event-topics/${doomed}`, { token: admin }), 200);
    expectError(await system.call("GET", `/v1/event-topics/${doomed}/event-sub-topics`), 404);
    expectError(await system.call("GET", `/v1/event-sub-topics/${child}`), 404);
    expectError(await system.call("GET", `/v1/event-sub-topics/${child}/event-topic`), 404);
    const trashed = await system.call("GET", `/v1/event-sub-topics/${child}?get_trashed=true`, {
      token: admin,
    });
    expectStatus(trashed, 200);
    assert.notEqual(trashed.body.data.attributes["deleted-at"], null);
  });
});

Deno.test("[catalog] an admin purges a soft-deleted topic with ?permanent=true", async () => {
  await using system = await startTestSystem();
  const id = await system.createTopic("Purge me");
  const admin = system.admin.token;
  expectStatus(await system.call("DELETE", `/v1/event-topics/${id}`, { token: admin }), 200);
  expectStatus(
    await system.call("DELETE", `/v1/event-topics/${id}?permanent=true`, { token: admin }),
    200,
  );
  const rows = await system.sql`select id from event_topics where id = ${id}`;
  assert.equal(rows.length, 0, "the row is gone for good");
});

Deno.test("[catalog] purging a sub-topic unlinks its events, each with a fact", async () => {
  await using system = await startTestSystem();
  const topic = await system.createTopic("Kept");
  const sub = await system.createSubTopic(topic, "Purged");
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, {
    relationships: inTopic(topic, sub),
  });
  const before = (await system.readFacts()).length;
  expectStatus(
    await system.call("DELETE", `/v1/event-sub-topics/${sub}?permanent=true`, {
      token: system.admin.token,
    }),
    200,
  );
  const [row] = await system.sql`select event_topic_id, event_sub_topic_id from events
    where id = ${event.id}`;
  assert.equal(row.event_sub_topic_id, null);
  assert.equal(String(row.event_topic_id), topic, "the topic link stays");
  const facts = (await system.readFacts()).slice(before);
  assert.deepEqual(facts.map((fact) => fact.type).sort(), [
    "catalog.event-sub-topic.deleted",
    "catalog.event.updated",
  ]);
  const updated = facts.find((fact) => fact.type === "catalog.event.updated")!.data;
  assert.equal((updated as Record<string, unknown>)["event-sub-topic"], null);
  assert.equal((updated as Record<string, unknown>)["event-topic"], topic);
});

Deno.test("[catalog] /v1/event-sub-topics ignores relationships it does not have, refuses events", async (t) => {
  await using system = await startTestSystem();
  const admin = system.admin.token;
  const topicId = await system.createTopic("Optics");
  // open-event-frontend's sub-topic model sends `custom-placeholder` (a relationship left out
  // here) on every save; the original ignored names it did not know.
  const relationships = {
    "event-topic": { data: { type: "event-topic", id: topicId } },
    "custom-placeholder": { data: null },
  };
  let subId = "";

  await t.step("POST and PATCH as the web client sends them: 201, 200", async () => {
    const created = await system.call("POST", "/v1/event-sub-topics", {
      token: admin,
      body: { data: { type: "event-sub-topic", attributes: { name: "Lenses" }, relationships } },
    });
    expectStatus(created, 201);
    subId = created.body.data.id;
    const attributes = { ...created.body.data.attributes, name: "Lenses and mirrors" };
    const patched = await system.call("PATCH", `/v1/event-sub-topics/${subId}`, {
      token: admin,
      body: { data: { type: "event-sub-topic", id: subId, attributes, relationships } },
    });
    expectStatus(patched, 200);
    assert.equal(patched.body.data.attributes.slug, "lenses-and-mirrors");
  });

  await t.step(
    "events sent on POST or PATCH: 422, as on a topic, and nothing is linked",
    async () => {
      const owner = await system.signUp();
      const event = await system.createEvent(owner.token, { attributes: { state: "published" } });
      const events = { data: [{ type: "event", id: event.id }] };
      const data = {
        type: "event-sub-topic",
        attributes: { name: "Prisms" },
        relationships: { ...relationships, events },
      };
      for (
        const [method, path, body] of [
          ["POST", "/v1/event-sub-topics", { data }],
          ["PATCH", `/v1/event-sub-topics/${subId}`, { data: { ...data, id: subId } }],
        ] as const
      ) {
        expectError(
          await system.call(method, path, { token: admin, body }),
          422,
          { pointer: "/data/relationships/events" },
        );
      }
      const [{ count }] = await system.sql`select count(*)::int as count from event_sub_topics
      where name = 'Prisms'`;
      assert.equal(count, 0);
      const linked = await system.call("GET", `/v1/event-sub-topics/${subId}/events`);
      assert.deepEqual(linked.body.data, []);
    },
  );
});

Deno.test("[catalog] a trashed topic and its sub-topics reach each other for an admin asking ?get_trashed=true", async () => {
  await using system = await startTestSystem();
  const admin = system.admin.token;
  const topicId = await system.createTopic("Trashed along");
  const subId = await system.createSubTopic(topicId, "Child");
  expectStatus(await system.call("DELETE", `/v1/event-topics/${topicId}`, { token: admin }), 200);
  const trashed = "?get_trashed=true";
  const sub = await system.call("GET", `/v1/event-sub-topics/${subId}${trashed}`, {
    token: admin,
  });
  const linkage = { type: "event-topic", id: topicId };
  assert.deepEqual(sub.body.data.relationships["event-topic"].data, linkage);
  // The linkage the sub-topic shows, its related link and its relationship link agree.
  const related = await system.call("GET", `/v1/event-sub-topics/${subId}/event-topic${trashed}`, {
    token: admin,
  });
  expectStatus(related, 200);
  assert.equal(related.body.data.id, topicId);
  assert.notEqual(related.body.data.attributes["deleted-at"], null);
  const relationship = await system.call(
    "GET",
    `/v1/event-sub-topics/${subId}/relationships/event-topic${trashed}`,
    { token: admin },
  );
  assert.deepEqual(relationship.body.data, linkage);
  // The other way: the sub-topics that went with the topic, as `/events` shows trashed events.
  const subs = await system.call("GET", `/v1/event-topics/${topicId}/event-sub-topics${trashed}`, {
    token: admin,
  });
  expectStatus(subs, 200);
  assert.deepEqual(subs.body.data.map((s: { id: string }) => s.id), [subId]);
  assert.equal(subs.body.meta.count, 1);
  // Without asking, or asked by anyone else, it stays hidden: the sub-topic is a 404.
  expectError(await system.call("GET", `/v1/event-sub-topics/${subId}/event-topic`), 404);
  const user = await system.signUp();
  expectError(
    await system.call("GET", `/v1/event-sub-topics/${subId}/event-topic${trashed}`, {
      token: user.token,
    }),
    404,
  );
});

// The original's topics are soft-deleted (SoftDeletionModel) and its generic PATCH with
// `?get_trashed=true` restores one sent back with `deleted-at: null`, as events and users are.
Deno.test("[catalog] an admin restores a soft-deleted event topic, and the sub-topics trashed with it", async (t) => {
  await using system = await startTestSystem();
  const admin = { token: system.admin.token };
  const user = await system.signUp();
  const topic = await system.createTopic("Science");
  const early = await system.createSubTopic(topic, "Early");
  const first = await system.createSubTopic(topic, "First");
  await system.createSubTopic(topic, "Second");
  const event = await system.createEvent(user.token, {
    attributes: { state: "published" },
    relationships: inTopic(topic, first),
  });
  const path = `/v1/event-topics/${topic}`;
  const restore = topicBody({ "deleted-at": null }, topic);
  expectStatus(await system.call("DELETE", `/v1/event-sub-topics/${early}`, admin), 200);
  expectStatus(await system.call("DELETE", path, admin), 200);
  // Anonymous reads the cache keeps: each must drop once the topic is back.
  const names = async (url: string) => {
    const reply = await system.call("GET", url);
    expectStatus(reply, 200, url);
    return reply.body.data.map((item: { attributes: { name: string } }) => item.attributes.name);
  };
  assert.deepEqual(await names("/v1/event-topics"), []);
  expectError(await system.call("GET", path), 404);
  expectError(await system.call("GET", `/v1/event-sub-topics/${first}`), 404);

  await t.step("only an admin reaches it, with ?get_trashed=true", async () => {
    expectError(await system.call("PATCH", path, { ...admin, body: restore }), 404);
    expectError(
      await system.call("PATCH", `${path}?get_trashed=true`, { token: user.token, body: restore }),
      403,
    );
  });

  await t.step("the admin's PATCH restores it and what went with it, announced", async () => {
    const before = (await system.readFacts()).length;
    const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
      ...admin,
      body: restore,
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["deleted-at"], null);
    const facts = (await system.readFacts()).slice(before);
    // The topic first: a mirror built from facts never shows live sub-topics under a trashed
    // topic (a deletion announces its dependents first, for the same reason).
    assert.deepEqual(facts.map((fact) => fact.type), [
      "catalog.event-topic.updated",
      "catalog.event-sub-topic.updated",
      "catalog.event-sub-topic.updated",
    ]);
    assert.deepEqual(await names("/v1/event-topics"), ["Science"]);
    expectStatus(await system.call("GET", path), 200);
    expectStatus(await system.call("GET", `/v1/event-sub-topics/${first}`), 200);
    // The one deleted before stays in the trash; the event unlinked by the deletion stays so.
    assert.deepEqual(await names(`${path}/event-sub-topics?sort=name`), ["First", "Second"]);
    expectError(await system.call("GET", `/v1/event-sub-topics/${early}`), 404);
    const linked = await system.call("GET", `/v1/events/${event.id}/event-topic`);
    expectStatus(linked, 200);
    assert.equal(linked.body.data, null);
  });

  await t.step("a second restore changes nothing and announces nothing", async () => {
    const before = (await system.readFacts()).length;
    const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
      ...admin,
      body: restore,
    });
    expectStatus(reply, 200);
    assert.equal((await system.readFacts()).length, before);
  });

  await t.step(
    "a name a live topic took meanwhile is a 409; a new name with it restores",
    async () => {
      expectStatus(await system.call("DELETE", path, admin), 200);
      await system.createTopic("Science");
      const taken = await system.call("PATCH", `${path}?get_trashed=true`, {
        ...admin,
        body: restore,
      });
      expectError(taken, 409, { pointer: "/data/attributes/name" });
      const [row] = await system.sql`select deleted_at from event_topics where id = ${topic}`;
      assert.notEqual(row.deleted_at, null, "nothing changed");
      const renamed = await system.call("PATCH", `${path}?get_trashed=true`, {
        ...admin,
        body: topicBody({ name: "Science again", "deleted-at": null }, topic),
      });
      expectStatus(renamed, 200);
      assert.equal(renamed.body.data.attributes["deleted-at"], null);
      assert.equal(renamed.body.data.attributes.slug, "science-again");
    },
  );

  await t.step("a deleted-at other than null, or on a live topic, changes nothing", async () => {
    const reply = await system.call("PATCH", path, {
      ...admin,
      body: topicBody({ "deleted-at": "2020-01-01T00:00:00Z" }, topic),
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["deleted-at"], null);
  });
});

Deno.test("[catalog] an admin restores a soft-deleted event sub-topic whose topic is live", async (t) => {
  await using system = await startTestSystem();
  const admin = { token: system.admin.token };
  const topic = await system.createTopic("Arts");
  const sub = await system.createSubTopic(topic, "Painting");
  const path = `/v1/event-sub-topics/${sub}`;
  const restore = {
    data: { type: "event-sub-topic", id: sub, attributes: { "deleted-at": null } },
  };
  expectStatus(await system.call("DELETE", path, admin), 200);
  expectError(await system.call("GET", path), 404);

  await t.step("a restore: 200, live again, announced", async () => {
    const before = (await system.readFacts()).length;
    const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
      ...admin,
      body: restore,
    });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["deleted-at"], null);
    const facts = (await system.readFacts()).slice(before);
    assert.deepEqual(facts.map((fact) => fact.type), ["catalog.event-sub-topic.updated"]);
    expectStatus(await system.call("GET", path), 200);
  });

  await t.step("a name a live sibling took meanwhile is a 409 at name", async () => {
    expectStatus(await system.call("DELETE", path, admin), 200);
    await system.createSubTopic(topic, "Painting");
    const reply = await system.call("PATCH", `${path}?get_trashed=true`, {
      ...admin,
      body: restore,
    });
    expectError(reply, 409, { pointer: "/data/attributes/name" });
  });

  await t.step("under a trashed topic it is a 409 until it moves to a live one", async () => {
    const gone = await system.createTopic("Gone");
    const orphan = await system.createSubTopic(gone, "Orphan");
    expectStatus(await system.call("DELETE", `/v1/event-topics/${gone}`, admin), 200);
    const orphanPath = `/v1/event-sub-topics/${orphan}?get_trashed=true`;
    const attributes = { "deleted-at": null };
    const refused = await system.call("PATCH", orphanPath, {
      ...admin,
      body: { data: { type: "event-sub-topic", id: orphan, attributes } },
    });
    expectError(refused, 409, { pointer: "/data/relationships/event-topic" });
    const [row] = await system.sql`select deleted_at from event_sub_topics where id = ${orphan}`;
    assert.notEqual(row.deleted_at, null, "nothing changed");
    const moved = await system.call("PATCH", orphanPath, {
      ...admin,
      body: { data: { ...subTopicBody("Orphan", topic, orphan).data, attributes } },
    });
    expectStatus(moved, 200);
    assert.equal(moved.body.data.attributes["deleted-at"], null);
    assert.deepEqual(moved.body.data.relationships["event-topic"].data, {
      type: "event-topic",
      id: topic,
    });
  });
});

// A sub-topic's PATCH takes its row, then (a client sends back the relationship it read) its
// topic's, for share; a topic's deletion takes the topic's row, then its live sub-topics'. Met,
// they deadlocked: Postgres aborted one after a second, and its admin got a 500 (a review).
Deno.test("[catalog] a sub-topic's PATCH naming its topic and the topic's deletion, at once, both answer", async () => {
  await using system = await startTestSystem();
  const admin = { token: system.admin.token };
  const topic = await system.createTopic("Music");
  const sub = await system.createSubTopic(topic, "Jazz");
  // The test's own session holds the topic's row, so that the deletion waits for it first and
  // the PATCH, started second, queues behind it (holding the sub-topic's row).
  await using held = await holdTopicRow(system.databaseUrl, topic);
  const deletion = system.call("DELETE", `/v1/event-topics/${topic}`, admin);
  await untilWaitingForLocks(system.sql, { count: 1, what: "the deletion" });
  const patch = system.call("PATCH", `/v1/event-sub-topics/${sub}`, {
    ...admin,
    body: subTopicBody("Free jazz", topic, sub),
  });
  await untilWaitingForLocks(system.sql, { count: 2, what: "the deletion and the PATCH" });
  await held.release();
  const [deleted, patched] = await Promise.all([deletion, patch]);
  expectStatus(deleted, 200, "the deletion");
  // Renamed first, then trashed along; or after the deletion: the topic it names is gone (422),
  // or, read after it, the sub-topic is (404).
  assert.ok([200, 404, 422].includes(patched.status), `PATCH: ${patched.status}`);
  const [row] = await system.sql`select deleted_at from event_sub_topics where id = ${sub}`;
  assert.notEqual(row.deleted_at, null, "trashed with its topic");
});

// A sub-topic's restore checks, under its lock, that the topic it was read under is live; a
// trashed sub-topic can still move, so another topic may hold it by the time its own row is
// locked (a review): the restore must not make it live there unchecked.
Deno.test("[catalog] a sub-topic's restore that finds it moved meanwhile is a 409, and changes nothing", async () => {
  await using system = await startTestSystem();
  const admin = { token: system.admin.token };
  const [first, second] = [await system.createTopic("Arts"), await system.createTopic("Crafts")];
  const sub = await system.createSubTopic(first, "Pottery");
  const path = `/v1/event-sub-topics/${sub}?get_trashed=true`;
  expectStatus(await system.call("DELETE", `/v1/event-sub-topics/${sub}`, admin), 200);
  // The test's own session holds the first topic's row: the restore, which read the sub-topic
  // under it, waits there before it locks the sub-topic.
  await using held = await holdTopicRow(system.databaseUrl, first);
  const restore = system.call("PATCH", path, {
    ...admin,
    body: { data: { type: "event-sub-topic", id: sub, attributes: { "deleted-at": null } } },
  });
  await untilWaitingForLocks(system.sql, { count: 1, what: "the restore" });
  // Meanwhile the trashed sub-topic moves to the second topic, which is then deleted.
  const moved = await system.call("PATCH", path, {
    ...admin,
    body: subTopicBody("Pottery", second, sub),
  });
  expectStatus(moved, 200, "the move");
  expectStatus(await system.call("DELETE", `/v1/event-topics/${second}`, admin), 200);
  await held.release();
  expectError(await restore, 409, { pointer: "/data/relationships/event-topic" });
  const [row] = await system.sql`select deleted_at, event_topic_id from event_sub_topics
    where id = ${sub}`;
  assert.notEqual(row.deleted_at, null, "still in the trash, under a trashed topic");
  assert.equal(String(row.event_topic_id), second);
});

/**
 * A topic's row held `for update` by a session of the test's own, until `release` (or disposal):
 * what a write that locks the topic first waits for.
 */
function holdTopicRow(url: string, topicId: string) {
  return holdTransaction(
    url,
    (tx) => tx`select id from catalog.event_topics where id = ${topicId} for update`,
  );
}
