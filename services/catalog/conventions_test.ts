import assert from "node:assert/strict";
import {
  expectError,
  expectStatus,
  JSONAPI,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";

/** Relationships served by services that are not part of this system yet. */
const FOREIGN = new Set(["discount-codes", "discount-code", "stripe-authorization"]);

function names(body: { data: { attributes: { name: string } }[] }): string[] {
  return body.data.map((item) => item.attributes.name);
}

function q(params: Record<string, string>): string {
  return "?" + new URLSearchParams(params).toString();
}

async function seed(system: TestSystem) {
  const owner = await system.signUp();
  const topicId = await system.createTopic("Conventions");
  const subTopicId = await system.createSubTopic(topicId, "Conventions sub");
  const events: Record<string, { id: string; identifier: string }> = {};
  const specs: [string, string, string | null][] = [
    ["Alpha", "2031-01-01T10:00:00Z", "Hall A"],
    ["Bravo", "2031-01-02T10:00:00Z", null],
    ["Charlie", "2031-01-03T10:00:00Z", "Hall C"],
    ["Delta", "2031-01-04T10:00:00Z", null],
    ["echo", "2031-01-05T10:00:00Z", "Hall E"],
  ];
  for (const [name, starts, location] of specs) {
    events[name] = await system.createEvent(owner.token, {
      attributes: {
        name,
        state: "published",
        "starts-at": starts,
        "ends-at": starts.replace("T10", "T12"),
        "location-name": location,
      },
      relationships: name === "Alpha"
        ? {
          "event-topic": { data: { type: "event-topic", id: topicId } },
          "event-sub-topic": { data: { type: "event-sub-topic", id: subTopicId } },
        }
        : undefined,
    });
  }
  const ticketIds = [
    await system.createTicket(owner.token, events.Alpha.id, { name: "A1", price: 5 }),
    await system.createTicket(owner.token, events.Alpha.id, { name: "A2", price: 50 }),
  ];
  return { owner, topicId, subTopicId, events, ticketIds };
}

Deno.test("[catalog] lists page, sort, filter, include and select fields", async (t) => {
  await using system = await startTestSystem();
  const { owner, topicId, events, ticketIds } = await seed(system);

  await t.step("documents carry jsonapi, links.self and the JSON:API media type", async () => {
    for (const path of ["/v1/events", `/v1/events/${events.Alpha.id}`]) {
      const reply = await system.call("GET", path);
      expectStatus(reply, 200);
      assert.equal(reply.headers.get("Content-Type"), JSONAPI);
      assert.deepEqual(reply.body.jsonapi, { version: "1.0" });
      assert.equal(reply.body.links.self, path);
      assert.equal(
        typeof (Array.isArray(reply.body.data) ? reply.body.data[0] : reply.body.data)
          .id,
        "string",
      );
    }
  });

  await t.step("page[size] and page[number] with meta.count and links", async () => {
    const reply = await system.call(
      "GET",
      `/v1/events${q({ "page[size]": "2", "page[number]": "2", sort: "starts-at" })}`,
    );
    expectStatus(reply, 200);
    assert.deepEqual(names(reply.body), ["Charlie", "Delta"]);
    assert.equal(reply.body.meta.count, 5);
    for (const key of ["self", "first", "last", "prev", "next"]) {
      assert.equal(typeof reply.body.links[key], "string", `links.${key}`);
    }
    const next = await system.call("GET", reply.body.links.next);
    expectStatus(next, 200);
    assert.deepEqual(names(next.body), ["echo"]);
    assert.equal(next.body.links.next, undefined);
    const last = await system.call("GET", reply.body.links.last);
    assert.deepEqual(names(last.body), ["echo"]);
    const first = await system.call("GET", reply.body.links.first);
    assert.deepEqual(names(first.body), ["Alpha", "Bravo"]);
    assert.equal(first.body.links.prev, undefined);
    const beyond = await system.call(
      "GET",
      `/v1/events${q({ "page[size]": "2", "page[number]": "9" })}`,
    );
    expectStatus(beyond, 200);
    assert.deepEqual(beyond.body.data, []);
    assert.equal(beyond.body.meta.count, 5);
  });

  await t.step("page[size]=0 means everything; the default page is 20", async () => {
    const all = await system.call("GET", `/v1/events${q({ "page[size]": "0" })}`);
    expectStatus(all, 200);
    assert.equal(all.body.data.length, 5);
    for (let i = 0; i < 21; i++) await system.createTopic(`Paging ${i}`);
    const topics = await system.call("GET", "/v1/event-topics");
    assert.equal(topics.body.data.length, 20);
    assert.equal(topics.body.meta.count, 22);
  });

  await t.step("sort, ascending, descending and by several keys", async () => {
    const up = await system.call("GET", `/v1/events${q({ sort: "starts-at" })}`);
    assert.deepEqual(names(up.body), ["Alpha", "Bravo", "Charlie", "Delta", "echo"]);
    const down = await system.call("GET", `/v1/events${q({ sort: "-starts-at" })}`);
    assert.deepEqual(names(down.body), ["echo", "Delta", "Charlie", "Bravo", "Alpha"]);
    const underscored = await system.call("GET", `/v1/events${q({ sort: "-starts_at" })}`);
    expectStatus(underscored, 200);
    assert.deepEqual(names(underscored.body), names(down.body));
    const two = await system.call("GET", `/v1/events${q({ sort: "location-name,-name" })}`);
    expectStatus(two, 200);
    assert.deepEqual(names(two.body), ["Alpha", "Charlie", "echo", "Delta", "Bravo"]);
  });

  await t.step("filter in the original's form, with nesting", async () => {
    const cases: [unknown, string[]][] = [
      [[{ name: "name", op: "eq", val: "Bravo" }], ["Bravo"]],
      [[{ name: "name", op: "ne", val: "Bravo" }], ["Alpha", "Charlie", "Delta", "echo"]],
      [[{ name: "name", op: "ilike", val: "%H%" }], ["Alpha", "Charlie", "echo"]],
      [[{ name: "name", op: "like", val: "%h%" }], ["Alpha", "Charlie", "echo"]],
      [[{ name: "name", op: "in_", val: ["Alpha", "Delta", "Zulu"] }], ["Alpha", "Delta"]],
      [[{ name: "name", op: "notin_", val: ["Alpha", "Delta"] }], ["Bravo", "Charlie", "echo"]],
      [[{ name: "location-name", op: "is_", val: null }], ["Bravo", "Delta"]],
      [[{ name: "location-name", op: "isnot", val: null }], ["Alpha", "Charlie", "echo"]],
      [[{ name: "location_name", op: "eq", val: null }], ["Bravo", "Delta"]],
      [[{ name: "starts-at", op: "ge", val: "2031-01-04T00:00:00Z" }], ["Delta", "echo"]],
      [[{ name: "starts-at", op: "lt", val: "2031-01-02" }], ["Alpha"]],
      [
        [{ name: "starts-at", op: "gt", val: "2031-01-01T12:00:00+00:00" }, {
          name: "location-name",
          op: "isnot",
          val: null,
        }],
        ["Charlie", "echo"],
      ],
      [
        {
          or: [{ name: "name", op: "eq", val: "Alpha" }, {
            and: [{ name: "name", op: "ilike", val: "%e%" }, {
              not: { name: "name", op: "eq", val: "echo" },
            }],
          }],
        },
        ["Alpha", "Charlie", "Delta"],
      ],
      [[{ not: { name: "state", op: "eq", val: "published" } }], []],
      [[{ name: "can-pay-by-stripe", op: "eq", val: false }], [
        "Alpha",
        "Bravo",
        "Charlie",
        "Delta",
        "echo",
      ]],
      [[], ["Alpha", "Bravo", "Charlie", "Delta", "echo"]],
    ];
    for (const [filter, expected] of cases) {
      const reply = await system.call(
        "GET",
        `/v1/events${q({ filter: JSON.stringify(filter), sort: "starts-at" })}`,
      );
      expectStatus(reply, 200, JSON.stringify(filter));
      assert.deepEqual(names(reply.body), expected, JSON.stringify(filter));
      assert.equal(reply.body.meta.count, expected.length, JSON.stringify(filter));
    }
    const tickets = await system.call(
      "GET",
      `/v1/events/${events.Alpha.id}/tickets${
        q({ filter: '[{"name":"price","op":"gt","val":"10"}]' })
      }`,
    );
    expectStatus(tickets, 200);
    assert.deepEqual(names(tickets.body), ["A2"]);
  });

  await t.step("include event-topic and tickets (compound documents)", async () => {
    const reply = await system.call(
      "GET",
      `/v1/events${q({ include: "event-topic,tickets", sort: "starts-at" })}`,
    );
    expectStatus(reply, 200);
    const included = reply.body.included.map((r: { type: string; id: string }) =>
      `${r.type}:${r.id}`
    ).sort();
    assert.deepEqual(
      included,
      [
        `event-topic:${topicId}`,
        ...ticketIds.map((id) => `ticket:${id}`),
      ].sort(),
    );
    const one = await system.call("GET", `/v1/events/${events.Alpha.id}?include=tickets,owner`);
    expectStatus(one, 200);
    const types = one.body.included.map((r: { type: string }) => r.type).sort();
    assert.deepEqual(types, ["ticket", "ticket", "user"]);
    const user = one.body.included.find((r: { type: string }) => r.type === "user");
    assert.equal(user.id, owner.id);
    assert.equal(user.attributes.email, undefined, "the owner's email is public");
    const topic = await system.call("GET", `/v1/event-topics/${topicId}?include=event-sub-topics`);
    expectStatus(topic, 200);
    assert.equal(topic.body.included[0].type, "event-sub-topic");
  });

  await t.step("sparse fieldsets", async () => {
    const reply = await system.call(
      "GET",
      `/v1/events/${events.Alpha.id}${q({ "fields[event]": "name,tickets" })}`,
    );
    expectStatus(reply, 200);
    assert.deepEqual(Object.keys(reply.body.data.attributes), ["name"]);
    assert.deepEqual(Object.keys(reply.body.data.relationships), ["tickets"]);
    const list = await system.call(
      "GET",
      `/v1/events${
        q({ "fields[event]": "identifier", include: "tickets", "fields[ticket]": "price" })
      }`,
    );
    expectStatus(list, 200);
    // Every event and every ticket is there, so the loops below check some.
    assert.equal(list.body.data.length, 5);
    assert.deepEqual(
      list.body.included.map((r: { type: string; id: string }) => `${r.type}:${r.id}`).sort(),
      ticketIds.map((id) => `ticket:${id}`).sort(),
    );
    for (const event of list.body.data) {
      assert.deepEqual(Object.keys(event.attributes), ["identifier"]);
    }
    for (const ticket of list.body.included) {
      assert.deepEqual(Object.keys(ticket.attributes), ["price"]);
    }
    const empty = await system.call(
      "GET",
      `/v1/event-topics/${topicId}${q({ "fields[event-topic]": "" })}`,
    );
    expectStatus(empty, 200);
    assert.deepEqual(empty.body.data.attributes, {});
  });
});

Deno.test("[catalog] every query-parameter error is 400 with source.parameter", async (t) => {
  await using system = await startTestSystem();
  const { events, topicId } = await seed(system);
  const lists = [
    "/v1/events",
    "/v1/event-topics",
    "/v1/event-sub-topics",
    `/v1/events/${events.Alpha.id}/tickets`,
    `/v1/event-topics/${topicId}/events`,
    "/v1/users",
  ];
  const bad: [Record<string, string>, string][] = [
    [{ "filter[name]": "1" }, "filter[name]"],
    [{ "page[foo]": "1" }, "page[foo]"],
    [{ filter: "not json" }, "filter"],
    [{ filter: '{"name":"name"' }, "filter"],
    [{ filter: '[{"name":"nope","op":"eq","val":"x"}]' }, "filter"],
    [{ filter: '[{"name":"name","op":"regex","val":"x"}]' }, "filter"],
    [{ filter: '[{"name":"name","op":"eq"}]' }, "filter"],
    [{ filter: '[{"name":"name","op":"in_","val":"x"}]' }, "filter"],
    [{ filter: '[{"or":"x"}]' }, "filter"],
    [{ filter: "[1]" }, "filter"],
    [{ filter: '"x"' }, "filter"],
    [{ sort: "nope" }, "sort"],
    [{ sort: "-" }, "sort"],
    [{ sort: "name,," }, "sort"],
    [{ sort: "password_hash" }, "sort"],
    [{ include: "nope" }, "include"],
    // Deeper than three, through a relationship another service serves, or through nothing.
    [{ include: "tickets.event.owner.events" }, "include"],
    [{ include: "tickets.discount-codes" }, "include"],
    [{ include: "sessions.track" }, "include"],
    [{ include: "tickets." }, "include"],
    [{ "page[size]": "abc" }, "page[size]"],
    [{ "page[size]": "-1" }, "page[size]"],
    [{ "page[size]": "1.5" }, "page[size]"],
    [{ "page[size]": "100000" }, "page[size]"],
    [{ "page[number]": "0" }, "page[number]"],
    [{ "page[number]": "99999999999999999999" }, "page[number]"],
    [{ "fields[nope]": "name" }, "fields[nope]"],
    [{ "fields[event]": "nope" }, "fields[event]"],
  ];

  await t.step("on every list route", async () => {
    for (const list of lists) {
      for (const [params, parameter] of bad) {
        const reply = await system.call("GET", `${list}${q(params)}`, {
          token: system.admin.token,
        });
        // An include or fields type that is fine on one route may be unknown on another, and
        // an unknown field name too: all must be 400 naming the parameter.
        expectError(reply, 400, { parameter }, `${list} ${JSON.stringify(params)}`);
      }
      // Names outside the JSON:API families are ignored, as the original ignored them.
      const foreign = await system.call("GET", `${list}?foo=1&nocache=true`, {
        token: system.admin.token,
      });
      expectStatus(foreign, 200, list);
    }
  });

  await t.step("on single-resource routes too", async () => {
    for (
      const [params, parameter] of [
        [{ "fields[nope]": "1" }, "fields[nope]"],
        [{ include: "nope" }, "include"],
        [{ "fields[event]": "nope" }, "fields[event]"],
      ] as [Record<string, string>, string][]
    ) {
      const reply = await system.call("GET", `/v1/events/${events.Alpha.id}${q(params)}`);
      expectError(reply, 400, { parameter }, JSON.stringify(params));
    }
    // A list's parameters are ignored there, as the original's detail views ignored them, and
    // names outside the JSON:API families everywhere.
    const listParameters = { sort: "nope", filter: "[{", "page[size]": "x", foo: "1" };
    const reply = await system.call("GET", `/v1/events/${events.Alpha.id}${q(listParameters)}`);
    expectStatus(reply, 200);
  });
});

Deno.test("[catalog] POST and PATCH bodies follow JSON:API", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token);
  const ticket = await system.createTicket(owner.token, event.id);
  const topic = await system.createTopic("Bodies");
  const admin = system.admin.token;

  await t.step("a wrong type is 409 at /data/type", async () => {
    const cases: [string, string, string, string][] = [
      ["POST", "/v1/events", owner.token, "events"],
      ["POST", "/v1/events", owner.token, "ticket"],
      ["POST", "/v1/tickets", owner.token, "event"],
      ["POST", "/v1/event-topics", admin, "event-topics"],
      ["POST", "/v1/users", "", "users"],
      ["PATCH", `/v1/events/${event.id}`, owner.token, "ticket"],
      ["PATCH", `/v1/tickets/${ticket}`, owner.token, "event"],
      ["PATCH", `/v1/event-topics/${topic}`, admin, "event"],
      ["PATCH", `/v1/users/${owner.id}`, owner.token, "event"],
    ];
    for (const [method, path, token, type] of cases) {
      const id = method === "PATCH" ? path.split("/").pop() : undefined;
      const reply = await system.call(method, path, {
        token: token || undefined,
        body: { data: { type, ...(id && { id }), attributes: { name: "X" } } },
      });
      expectError(reply, 409, { pointer: "/data/type" }, `${method} ${path} ${type}`);
    }
  });

  await t.step("PATCH with data.id not the URL id is 409", async () => {
    const cases: [string, string, string][] = [
      [`/v1/events/${event.id}`, owner.token, "event"],
      [`/v1/tickets/${ticket}`, owner.token, "ticket"],
      [`/v1/event-topics/${topic}`, admin, "event-topic"],
      [`/v1/users/${owner.id}`, owner.token, "user"],
    ];
    for (const [path, token, type] of cases) {
      const reply = await system.call("PATCH", path, {
        token,
        body: { data: { type, id: "987654321", attributes: {} } },
      });
      expectError(reply, 409, { pointer: "/data/id" }, path);
    }
    const [row] = await system.sql`select name from events where id = ${event.id}`;
    assert.equal(row.name, event.resource.attributes.name);
  });

  await t.step("PATCH without data.id is 400", async () => {
    const reply = await system.call("PATCH", `/v1/events/${event.id}`, {
      token: owner.token,
      body: { data: { type: "event", attributes: { name: "No id" } } },
    });
    expectError(reply, 400, { pointer: "/data/id" });
  });

  await t.step("a body that is not a JSON:API document is 400", async () => {
    for (
      const body of [
        {},
        { data: null },
        { data: [] },
        { data: "event" },
        { data: { attributes: { name: "X" } } },
        { data: { type: "event", attributes: [] } },
        { data: { type: "event", attributes: {}, relationships: [] } },
        {
          data: {
            type: "event",
            attributes: {},
            relationships: { "event-topic": { id: "1" } },
          },
        },
      ]
    ) {
      const reply = await system.call("POST", "/v1/events", { token: owner.token, body });
      expectError(reply, 400, {}, JSON.stringify(body));
    }
  });

  await t.step("a read-only relationship is 422; a wrong relationship type is 409", async () => {
    expectError(
      await system.call("POST", "/v1/events", {
        token: owner.token,
        body: {
          data: {
            type: "event",
            attributes: {},
            relationships: { tickets: { data: [{ type: "ticket", id: "1" }] } },
          },
        },
      }),
      422,
      { pointer: "/data/relationships/tickets" },
    );
    expectError(
      await system.call("PATCH", `/v1/events/${event.id}`, {
        token: owner.token,
        body: {
          data: {
            type: "event",
            id: event.id,
            relationships: { "event-topic": { data: { type: "ticket", id: topic } } },
          },
        },
      }),
      409,
      { pointer: "/data/relationships/event-topic/data/type" },
    );
  });

  await t.step("a wrong media type is 415, a wrong Accept 406", async () => {
    const body = { data: { type: "event", id: event.id, attributes: { name: "Media" } } };
    for (const type of ["application/json", "text/plain", `${JSONAPI}; charset=utf-8`]) {
      expectError(
        await system.call("PATCH", `/v1/events/${event.id}`, {
          token: owner.token,
          body,
          headers: { "Content-Type": type },
        }),
        415,
        {},
        type,
      );
    }
    expectError(
      await system.call("GET", `/v1/events/${event.id}`, {
        token: owner.token,
        headers: { Accept: "text/html" },
      }),
      406,
    );
  });
});

Deno.test("[catalog] every relationship link of a resource resolves", async (t) => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const topicId = await system.createTopic("Links");
  const subTopicId = await system.createSubTopic(topicId, "Links sub");
  const token = cast.owner.token;
  await system.call("PATCH", `/v1/events/${cast.event.id}`, {
    token,
    body: {
      data: {
        type: "event",
        id: cast.event.id,
        relationships: {
          "event-topic": { data: { type: "event-topic", id: topicId } },
          "event-sub-topic": { data: { type: "event-sub-topic", id: subTopicId } },
        },
      },
    },
  });
  const ticketId = await system.createTicket(token, cast.event.id);

  async function followAll(path: string) {
    const reply = await system.call("GET", path, { token });
    expectStatus(reply, 200, path);
    const relationships = reply.body.data.relationships ?? {};
    assert.ok(Object.keys(relationships).length > 0, `${path} has no relationships`);
    for (
      const [name, rel] of Object.entries(relationships) as [
        string,
        { links: Record<string, string>; data?: unknown },
      ][]
    ) {
      if (FOREIGN.has(name)) continue;
      assert.ok(rel.links.self.startsWith(path), `${path} ${name} links.self`);
      assert.equal(rel.links.self, `${path}/relationships/${name}`);
      assert.equal(rel.links.related, `${path}/${name}`);
      const self = await system.call("GET", rel.links.self, { token });
      expectStatus(self, 200, `${path} ${name} self`);
      assert.equal(self.body.links.self, rel.links.self);
      if (rel.data !== undefined) {
        assert.deepEqual(self.body.data, rel.data, `${path} ${name} linkage differs`);
      }
      const related = await system.call("GET", rel.links.related, { token });
      expectStatus(related, 200, `${path} ${name} related`);
    }
  }

  await t.step("an event's relationships (self and related)", async () => {
    await followAll(`/v1/events/${cast.event.id}`);
  });

  await t.step("a topic's, a sub-topic's, a ticket's, a user's and a role grant's", async () => {
    await followAll(`/v1/event-topics/${topicId}`);
    await followAll(`/v1/event-sub-topics/${subTopicId}`);
    await followAll(`/v1/tickets/${ticketId}`);
    await followAll(`/v1/users/${cast.owner.id}`);
    await followAll(`/v1/users-events-roles/${cast.grants.owner}`);
  });

  await t.step("an empty to-one relationship resolves to data null", async () => {
    // JSON:API 1.0: a related resource link of an empty to-one relationship answers 200 with
    // `data: null`; api-surface §1: every relationship "resolves".
    const bare = await system.createEvent(token, { attributes: { state: "published" } });
    for (const rel of ["event-topic", "event-sub-topic"]) {
      const linkage = await system.call("GET", `/v1/events/${bare.id}/relationships/${rel}`);
      expectStatus(linkage, 200, `relationships/${rel}`);
      assert.equal(linkage.body.data, null);
      const related = await system.call("GET", `/v1/events/${bare.id}/${rel}`);
      expectStatus(related, 200, rel);
      assert.equal(related.body.data, null);
    }
  });
});
