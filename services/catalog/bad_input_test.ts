import assert from "node:assert/strict";
import {
  type CallResult,
  type EventCast,
  expectError,
  expectStatus,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";

const SQLISH = [
  "1; drop table users --",
  "' or 1=1 --",
  '" or ""="',
  "1) or (1=1",
  "'; select pg_sleep(5); --",
];
const WEIRD = [
  "abc",
  "-1",
  "0",
  "1.5",
  "1e3",
  "99999999999999999999",
  "9223372036854775808",
  "%00",
  "%F0%9F%8E%89",
  "..%2F..%2Fetc%2Fpasswd",
];

/** 4xx, a JSON:API error document, and no stack trace or SQL in it. */
function expectClientError(reply: CallResult, what: string) {
  assert.ok(
    reply.status >= 400 && reply.status < 500,
    `${what}: expected 4xx, got ${reply.status} ${reply.text.slice(0, 300)}`,
  );
  expectError(reply, reply.status, {}, what);
  assert.doesNotMatch(reply.text, /\bat .+\.ts:\d+|postgres|syntax error|relation "/i, what);
}

/** Runs `check` and keeps its message instead of stopping at the first problem. */
function collector() {
  const problems: string[] = [];
  return {
    check(fn: () => void) {
      try {
        fn();
      } catch (error) {
        problems.push((error as Error).message.split("\n")[0]);
      }
    },
    done(what: string) {
      assert.deepEqual(problems, [], `${problems.length} problems with ${what}`);
    },
  };
}

/** Never 5xx; if 2xx, fine (a name may legitimately look like SQL). */
function expectNot500(reply: CallResult, what: string) {
  assert.ok(reply.status < 500, `${what}: got ${reply.status} ${reply.text.slice(0, 300)}`);
}

async function rowCounts(system: TestSystem): Promise<Record<string, number>> {
  const [row] = await system.sql`select
    (select count(*)::int from users) as users,
    (select count(*)::int from events) as events,
    (select count(*)::int from tickets) as tickets,
    (select count(*)::int from event_topics) as topics,
    (select count(*)::int from event_sub_topics) as sub_topics,
    (select count(*)::int from users_events_roles) as grants,
    (select count(*)::int from outbox) as outbox`;
  return { ...row };
}

function eventBody(attributes: Record<string, unknown>) {
  return {
    data: {
      type: "event",
      attributes: {
        name: "Input",
        "starts-at": "2031-01-01T10:00:00Z",
        "ends-at": "2031-01-01T12:00:00Z",
        ...attributes,
      },
    },
  };
}

/** What every step works on: a published event with its cast, a ticket and a topic. */
interface BadInput {
  system: TestSystem;
  cast: EventCast;
  /** The event owner's token. */
  owner: string;
  /** The admin's token. */
  admin: string;
  ticketId: string;
  topicId: string;
}

async function arrange(system: TestSystem): Promise<BadInput> {
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const owner = cast.owner.token;
  const admin = system.admin.token;
  const ticketId = await system.createTicket(owner, cast.event.id);
  const topicId = await system.createTopic("Inputs");
  await system.catalog.relay.flush();
  return { system, cast, owner, admin, ticketId, topicId };
}

async function malformedBodies({ system, cast, owner, admin, ticketId }: BadInput): Promise<void> {
  const before = await rowCounts(system);
  const bodies = ["{", "not json", '{"data":', "[]", "null", '"x"', "1", "\u0000", ""];
  const routes: [string, string, string | undefined][] = [
    ["POST", "/v1/events", owner],
    ["POST", "/v1/users", undefined],
    ["POST", "/v1/tickets", owner],
    ["POST", "/v1/event-topics", admin],
    ["POST", "/v1/users-events-roles", owner],
    ["PATCH", `/v1/events/${cast.event.id}`, owner],
    ["PATCH", `/v1/tickets/${ticketId}`, owner],
    ["POST", "/v1/auth/login", undefined],
  ];
  for (const [method, path, token] of routes) {
    for (const body of bodies) {
      const reply = await system.call(method, path, { token, body });
      expectClientError(reply, `${method} ${path} ${JSON.stringify(body)}`);
    }
  }
  await system.catalog.relay.flush();
  assert.deepEqual(await rowCounts(system), before);
}

async function oddIds({ system, cast, admin }: BadInput): Promise<void> {
  const paths = (id: string) => [
    `/v1/events/${id}`,
    `/v1/events/${id}/tickets`,
    `/v1/events/${id}/relationships/event-topic`,
    `/v1/users/${id}`,
    `/v1/users/${id}/events`,
    `/v1/tickets/${id}`,
    `/v1/event-topics/${id}`,
    `/v1/event-topics/${id}/events`,
    `/v1/event-sub-topics/${id}`,
    `/v1/users-events-roles/${id}`,
    `/v1/roles/${id}`,
  ];
  const found = collector();
  for (const raw of [...SQLISH.map(encodeURIComponent), ...WEIRD]) {
    for (const path of paths(raw)) {
      for (const token of [undefined, cast.stranger.token, admin]) {
        const reply = await system.call("GET", path, { token });
        found.check(() => expectClientError(reply, `GET ${path}`));
      }
    }
    for (const path of paths(raw).filter((p) => p.split("/").length === 4)) {
      const type = path.split("/")[2].replace(/s$/, "");
      const patch = await system.call("PATCH", path, {
        token: admin,
        body: { data: { type, id: decodeURIComponent(raw), attributes: {} } },
      });
      found.check(() => expectClientError(patch, `PATCH ${path}`));
      const remove = await system.call("DELETE", path, { token: admin });
      found.check(() => expectClientError(remove, `DELETE ${path}`));
    }
  }
  found.done("ids");
  assert.equal((await rowCounts(system)).users > 0, true, "users table is gone");
}

async function sqlishQueries({ system, admin }: BadInput): Promise<void> {
  for (const value of SQLISH) {
    const queries: Record<string, string>[] = [
      { sort: value },
      { include: value },
      { "page[size]": value },
      { "page[number]": value },
      { "fields[event]": value },
      { [`fields[${value}]`]: "1" },
      { filter: value },
      { filter: JSON.stringify([{ name: value, op: "eq", val: "x" }]) },
      { filter: JSON.stringify([{ name: "name", op: value, val: "x" }]) },
    ];
    for (const query of queries) {
      const path = `/v1/events?${new URLSearchParams(query)}`;
      expectClientError(await system.call("GET", path, { token: admin }), path);
    }
    // A name outside the JSON:API families is ignored, as the original ignored it.
    const named = `/v1/events?${new URLSearchParams({ [value]: "1" })}`;
    expectStatus(await system.call("GET", named, { token: admin }), 200, named);
    // As a value, SQL is just text: the filter matches nothing.
    for (const op of ["eq", "like", "ilike", "ne"]) {
      const filter = JSON.stringify([{ name: "name", op, val: value }]);
      const reply = await system.call("GET", `/v1/events?${new URLSearchParams({ filter })}`);
      expectStatus(reply, 200, `${op} ${value}`);
      assert.ok(op === "ne" || reply.body.data.length === 0, `${op} ${value} matched rows`);
    }
    const inFilter = JSON.stringify([{ name: "name", op: "in_", val: [value, value] }]);
    expectStatus(
      await system.call("GET", `/v1/events?${new URLSearchParams({ filter: inFilter })}`),
      200,
    );
  }
}

async function sqlishAttributes(input: BadInput): Promise<void> {
  const { system, owner, admin } = input;
  for (const value of SQLISH) {
    const event = await system.call("POST", "/v1/events", {
      token: owner,
      body: eventBody({ name: value, description: value, "location-name": value }),
    });
    expectStatus(event, 201, value);
    assert.equal(event.body.data.attributes.name, value);
    const [row] = await system.sql`select name from events where id = ${event.body.data.id}`;
    assert.equal(row.name, value);
    await refusesSqlishValue(input, value);
    const topic = await system.call("POST", "/v1/event-topics", {
      token: admin,
      body: { data: { type: "event-topic", attributes: { name: `${value} topic` } } },
    });
    expectNot500(topic, `topic ${value}`);
  }
  const [{ count }] = await system.sql`select count(*)::int as count from users`;
  assert.ok(count >= 5, "users were dropped");
}

/** Where SQL-looking text is no valid value (a zone, a date, an email, a price, an id): 4xx. */
async function refusesSqlishValue({ system, cast, owner }: BadInput, value: string) {
  expectClientError(
    await system.call("POST", "/v1/events", {
      token: owner,
      body: eventBody({ timezone: value }),
    }),
    `timezone ${value}`,
  );
  expectClientError(
    await system.call("POST", "/v1/events", {
      token: owner,
      body: eventBody({ "starts-at": value }),
    }),
    `starts-at ${value}`,
  );
  expectClientError(
    await system.call("POST", "/v1/users", {
      body: { data: { type: "user", attributes: { email: value, password: "long enough" } } },
    }),
    `email ${value}`,
  );
  expectClientError(
    await system.call("POST", "/v1/auth/login", {
      body: { email: value, password: value },
      headers: { "Content-Type": "application/json" },
    }),
    `login ${value}`,
  );
  expectClientError(
    await system.call("POST", "/v1/tickets", {
      token: owner,
      body: {
        data: {
          type: "ticket",
          attributes: { name: value, type: "paid", price: value },
          relationships: { event: { data: { type: "event", id: cast.event.id } } },
        },
      },
    }),
    `price ${value}`,
  );
  expectClientError(
    await system.call("POST", "/v1/tickets", {
      token: owner,
      body: {
        data: {
          type: "ticket",
          attributes: { name: value, type: "free" },
          relationships: { event: { data: { type: "event", id: value } } },
        },
      },
    }),
    `ticket event id ${value}`,
  );
}

async function unicodeRoundTrips({ system, owner, admin }: BadInput): Promise<void> {
  const name = "Fête 🎉 日本語 עברית \u200b Ω";
  const event = await system.call("POST", "/v1/events", {
    token: owner,
    body: eventBody({ name, description: "é".repeat(1000) }),
  });
  expectStatus(event, 201);
  const back = await system.call("GET", `/v1/events/${event.body.data.id}`, { token: owner });
  assert.equal(back.body.data.attributes.name, name);
  const filter = JSON.stringify([{ name: "name", op: "eq", val: name }]);
  const found = await system.call("GET", `/v1/events?${new URLSearchParams({ filter })}`, {
    token: owner,
  });
  assert.deepEqual(found.body.data.map((e: { id: string }) => e.id), [event.body.data.id]);
  const lone = await system.call("POST", "/v1/events", {
    token: owner,
    body:
      `{"data":{"type":"event","attributes":{"name":"\\ud800","starts-at":"2031-01-01T10:00:00Z","ends-at":"2031-01-01T12:00:00Z"}}}`,
  });
  expectNot500(lone, "lone surrogate");
  const topic = await system.call("POST", "/v1/event-topics", {
    token: admin,
    body: { data: { type: "event-topic", attributes: { name: "Café Ünïcode" } } },
  });
  expectStatus(topic, 201);
  assert.equal(topic.body.data.attributes.slug, "cafe-unicode");
}

async function nulCharacters(input: BadInput): Promise<void> {
  const { system } = input;
  const before = await rowCounts(system);
  const found = collector();
  const nul = "a\u0000b";
  for (const [method, path, body, token] of nulRequests(input, nul)) {
    const reply = await system.call(method, path, { token, body });
    found.check(() => expectClientError(reply, `${method} ${path} with NUL`));
  }
  const login = await system.call("POST", "/v1/auth/login", {
    body: { email: "a\u0000@example.test", password: "whatever1" },
    headers: { "Content-Type": "application/json" },
  });
  found.check(() => expectClientError(login, "login email with NUL"));
  const filter = JSON.stringify([{ name: "name", op: "eq", val: nul }]);
  const listed = await system.call("GET", `/v1/events?${new URLSearchParams({ filter })}`);
  found.check(() => expectClientError(listed, "filter value with NUL"));
  const roleReply = await system.call("GET", "/v1/roles/%00");
  found.check(() => expectClientError(roleReply, "GET /v1/roles/%00"));
  await system.catalog.relay.flush();
  found.done("NUL characters");
  assert.equal((await rowCounts(system)).events, before.events);
}

/** A write on every resource with `nul` in a text attribute (or an id): method, path, body, token. */
function nulRequests(
  { cast, owner, admin }: BadInput,
  nul: string,
): [string, string, unknown, string | undefined][] {
  return [
    ["POST", "/v1/events", eventBody({ name: nul }), owner],
    ["PATCH", `/v1/events/${cast.event.id}`, {
      data: { type: "event", id: cast.event.id, attributes: { description: nul } },
    }, owner],
    ["POST", "/v1/users", {
      data: {
        type: "user",
        attributes: { email: "nul@example.test", password: "long enough", "first-name": nul },
      },
    }, undefined],
    [
      "POST",
      "/v1/event-topics",
      { data: { type: "event-topic", attributes: { name: nul } } },
      admin,
    ],
    ["POST", "/v1/tickets", {
      data: {
        type: "ticket",
        attributes: { name: nul, type: "free" },
        relationships: { event: { data: { type: "event", id: cast.event.id } } },
      },
    }, owner],
    ["POST", "/v1/users-events-roles", {
      data: {
        type: "users-events-role",
        relationships: {
          user: { data: { type: "user", id: cast.stranger.id } },
          event: { data: { type: "event", id: cast.event.id } },
          role: { data: { type: "role", id: nul } },
        },
      },
    }, owner],
  ];
}

async function likePatterns({ system }: BadInput): Promise<void> {
  // Postgres refuses a pattern ending in the escape character once it reaches it.
  const found = collector();
  for (const val of ["\\", "abc\\", "%\\"]) {
    for (const op of ["like", "ilike"]) {
      const filter = JSON.stringify([{ name: "name", op, val }]);
      const reply = await system.call("GET", `/v1/events?${new URLSearchParams({ filter })}`);
      found.check(() => expectNot500(reply, `${op} ${JSON.stringify(val)}`));
    }
  }
  found.done("LIKE patterns");
}

async function impossibleDates({ system, owner }: BadInput): Promise<void> {
  const found = collector();
  for (const val of ["0000-01-01", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00"]) {
    for (
      const [path, name] of [["/v1/events", "starts-at"], ["/v1/event-topics", "created-at"]]
    ) {
      const filter = JSON.stringify([{ name, op: "gt", val }]);
      const reply = await system.call("GET", `${path}?${new URLSearchParams({ filter })}`);
      found.check(() => expectNot500(reply, `${path} filter ${name} > ${val}`));
    }
  }
  const before = await rowCounts(system);
  for (const starts of ["0000-01-01T00:00:00Z", "-000001-01-01T00:00:00Z"]) {
    const reply = await system.call("POST", "/v1/events", {
      token: owner,
      body: eventBody({ "starts-at": starts }),
    });
    found.check(() => expectNot500(reply, `starts-at ${starts}`));
  }
  found.done("dates");
  await system.catalog.relay.flush();
  assert.equal((await rowCounts(system)).events, before.events);
}

async function hugeNumbers({ system, cast, owner, ticketId }: BadInput): Promise<void> {
  for (const value of [1e20, -1e20, 1e308, 2 ** 63, "99999999999999999999", 0.001]) {
    for (const name of ["price", "quantity"]) {
      const reply = await system.call("PATCH", `/v1/tickets/${ticketId}`, {
        token: owner,
        body: { data: { type: "ticket", id: ticketId, attributes: { [name]: value } } },
      });
      expectClientError(reply, `${name}=${value}`);
    }
  }
  for (
    const filter of [
      [{ name: "quantity", op: "gt", val: 1e20 }],
      [{ name: "quantity", op: "gt", val: "99999999999999999999" }],
    ]
  ) {
    expectClientError(
      await system.call(
        "GET",
        `/v1/events/${cast.event.id}/tickets?${new URLSearchParams({
          filter: JSON.stringify(filter),
        })}`,
      ),
      JSON.stringify(filter),
    );
  }
  for (const val of [1e308, -1e308, 2 ** 70]) {
    const filter = JSON.stringify([{ name: "price", op: "lt", val }]);
    expectNot500(
      await system.call(
        "GET",
        `/v1/events/${cast.event.id}/tickets?${new URLSearchParams({ filter })}`,
      ),
      `price < ${val}`,
    );
  }
  expectNot500(
    await system.call("GET", "/v1/events?page[size]=1000&page[number]=9007199254740991"),
    "page far away",
  );
  const [row] = await system.sql`select price, quantity from tickets where id = ${ticketId}`;
  assert.equal(Number(row.price), 10);
  assert.equal(row.quantity, 100);
}

async function relationshipIds({ system, cast, owner, topicId }: BadInput): Promise<void> {
  for (const id of [...SQLISH, ...WEIRD, 1.5, -1, true, null]) {
    const reply = await system.call("PATCH", `/v1/events/${cast.event.id}`, {
      token: owner,
      body: {
        data: {
          type: "event",
          id: cast.event.id,
          relationships: { "event-topic": { data: { type: "event-topic", id } } },
        },
      },
    });
    expectNot500(reply, `event-topic id ${id}`);
    if (id !== null) expectClientError(reply, `event-topic id ${id}`);
    const grant = await system.call("POST", "/v1/users-events-roles", {
      token: owner,
      body: {
        data: {
          type: "users-events-role",
          relationships: {
            user: { data: { type: "user", id } },
            event: { data: { type: "event", id: cast.event.id } },
            role: { data: { type: "role", id: "coorganizer" } },
          },
        },
      },
    });
    expectClientError(grant, `grant user id ${id}`);
  }
  assert.ok(topicId);
}

async function failedCreates({ system, cast, owner, admin }: BadInput): Promise<void> {
  await system.catalog.relay.flush();
  const before = await rowCounts(system);
  const facts = (await system.readFacts()).length;
  const failures: [string, string, unknown, string | undefined][] = [
    ["POST", "/v1/events", eventBody({ "ends-at": "2030-01-01T00:00:00Z" }), owner],
    ["POST", "/v1/events", eventBody({ timezone: "Nowhere" }), owner],
    ["POST", "/v1/users", {
      data: { type: "user", attributes: { email: "x@example.test", password: "short" } },
    }, undefined],
    ["POST", "/v1/tickets", {
      data: {
        type: "ticket",
        attributes: { name: "T", type: "free", price: 3 },
        relationships: { event: { data: { type: "event", id: cast.event.id } } },
      },
    }, owner],
    ["POST", "/v1/event-topics", {
      data: { type: "event-topic", attributes: { name: "Inputs" } },
    }, admin],
    ["POST", "/v1/event-sub-topics", {
      data: { type: "event-sub-topic", attributes: { name: "Orphan" } },
    }, admin],
    ["POST", "/v1/users-events-roles", {
      data: {
        type: "users-events-role",
        relationships: {
          user: { data: { type: "user", id: cast.coorganizer.id } },
          event: { data: { type: "event", id: cast.event.id } },
          role: { data: { type: "role", id: "coorganizer" } },
        },
      },
    }, owner],
  ];
  for (const [method, path, body, token] of failures) {
    expectClientError(await system.call(method, path, { token, body }), `${method} ${path}`);
  }
  await system.catalog.relay.flush();
  assert.deepEqual(await rowCounts(system), before);
  assert.equal((await system.readFacts()).length, facts);
}

async function oversizedBody({ system, owner }: BadInput): Promise<void> {
  const reply = await system.call("POST", "/v1/events", {
    token: owner,
    body: eventBody({ description: "x".repeat(2_000_000) }),
  });
  expectError(reply, 413);
}

/** In this order: later steps count rows the earlier ones left (the "Inputs" topic, say). */
const STEPS: [string, (input: BadInput) => Promise<void>][] = [
  ["malformed JSON bodies are 400 and write nothing", malformedBodies],
  ["SQL-looking and odd ids in every path are 4xx", oddIds],
  ["SQL-looking values in every query parameter are 400, not 500", sqlishQueries],
  ["SQL-looking attributes are stored verbatim or refused, never run", sqlishAttributes],
  ["unicode round-trips", unicodeRoundTrips],
  ["a NUL character in text is 4xx, not 500", nulCharacters],
  ["LIKE patterns that Postgres rejects are not 500", likePatterns],
  ["dates Postgres cannot hold are 4xx, not 500", impossibleDates],
  ["huge numbers are 4xx, never 500", hugeNumbers],
  ["relationship ids that are not ids are 4xx", relationshipIds],
  ["after failed creates no row and no fact exists", failedCreates],
  ["an oversized body is 413", oversizedBody],
];

Deno.test("[catalog] bad input never answers 500 and never half-writes", async (t) => {
  await using system = await startTestSystem();
  const input = await arrange(system);
  for (const [name, step] of STEPS) await t.step(name, () => step(input));
});

Deno.test("[catalog] a refused value's 422 names the attribute in its detail", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token);
  const refused = async (what: string, path: string, body: unknown, attribute: string) => {
    await t.step(what, async () => {
      const method = path.endsWith("s") ? "POST" : "PATCH";
      const reply = await system.call(method, path, { token: owner.token, body });
      expectError(reply, 422, { pointer: `/data/attributes/${attribute}` }, what);
      assert.match(reply.body.errors[0].detail, new RegExp(`^Cannot save: ${attribute} `));
    });
  };
  const patch = (attributes: Record<string, unknown>) => ({
    data: { type: "event", id: event.id, attributes },
  });
  const ticket = (attributes: Record<string, unknown>) => ({
    data: {
      type: "ticket",
      attributes: { name: "T", type: "paid", price: 10, ...attributes },
      relationships: { event: { data: { type: "event", id: event.id } } },
    },
  });
  const path = `/v1/events/${event.id}`;
  await refused("an unknown time zone", path, patch({ timezone: "Mars/Olympus" }), "timezone");
  await refused(
    "a year Postgres cannot hold",
    path,
    patch({ "ends-at": "+010000-01-01T00:00:00Z" }),
    "ends-at",
  );
  await refused("a blank name", path, patch({ name: "  " }), "name");
  await refused("a price above the largest", "/v1/tickets", ticket({ price: 1e12 }), "price");
  await t.step("the largest price is named in the detail", async () => {
    const reply = await system.call("POST", "/v1/tickets", {
      token: owner.token,
      body: ticket({ price: 1e12 }),
    });
    assert.equal(reply.body.errors[0].detail, "Cannot save: price must be at most 9999999999.99");
  });
  await refused("a short password", `/v1/users/${owner.id}`, {
    data: { type: "user", id: owner.id, attributes: { password: "short" } },
  }, "password");
});
