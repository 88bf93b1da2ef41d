import assert from "node:assert/strict";
import { expectError, expectStatus, inTopic, startTestSystem } from "@testing/system.ts";

function names(body: { data: { attributes: { name: string } }[] }): string[] {
  return body.data.map((item) => item.attributes.name);
}

// Written as a client's URL, not built with URLSearchParams: `+` is a space there, `%2B` a sign.
Deno.test("[catalog] GET /v1/events reads page values and filter date-times as the original did", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  for (
    const [name, starts] of [["One", "2031-01-01"], ["Two", "2031-01-02"], ["Three", "2031-01-03"]]
  ) {
    await system.createEvent(owner.token, {
      attributes: {
        name,
        state: "published",
        // A body's lenient form (a space, no seconds), as the filter below takes it too.
        "starts-at": `${starts} 10:00+00`,
        "ends-at": `${starts}T12:00:00Z`,
      },
    });
  }

  await t.step("page[size] and page[number] with spaces, signs and underscores", async () => {
    const pages: [string, string[]][] = [
      ["page[size]=%202", ["One", "Two"]],
      ["page[size]=+2", ["One", "Two"]],
      ["page[size]=%2B2&page[number]=%202", ["Three"]],
      ["page[size]=1_0", ["One", "Two", "Three"]],
      ["page[size]=-0", ["One", "Two", "Three"]],
    ];
    for (const [query, expected] of pages) {
      const reply = await system.call("GET", `/v1/events?sort=starts-at&${query}`);
      expectStatus(reply, 200, query);
      assert.deepEqual(names(reply.body), expected, query);
      assert.equal(reply.body.meta.count, 3, query);
    }
  });

  await t.step("what Python's int() refused stays a 400 naming the parameter", async () => {
    const bad: [string, string][] = [
      ["page[size]=1__0", "page[size]"],
      ["page[size]=%2B%202", "page[size]"],
      ["page[size]=-1", "page[size]"],
      ["page[number]=+0", "page[number]"],
    ];
    for (const [query, parameter] of bad) {
      const reply = await system.call("GET", `/v1/events?${query}`);
      expectError(reply, 400, { parameter }, query);
    }
  });

  await t.step("a filter's date-time in a body's forms, one-digit fields included", async () => {
    const filters: [string, string[]][] = [
      ["2031-1-2 9:00+00", ["Two", "Three"]],
      ["2031-01-02T10:00:00.001+0000", ["Three"]],
      ["2031-1-2T18:00+08", ["Two", "Three"]],
      ["2031-1-3", ["Three"]],
    ];
    for (const [val, expected] of filters) {
      const filter = encodeURIComponent(JSON.stringify([{ name: "starts-at", op: "ge", val }]));
      const reply = await system.call("GET", `/v1/events?sort=starts-at&filter=${filter}`);
      expectStatus(reply, 200, val);
      assert.deepEqual(names(reply.body), expected, val);
    }
    const filter = encodeURIComponent(
      JSON.stringify([{ name: "starts-at", op: "ge", val: "2031-1-2T9" }]),
    );
    expectError(await system.call("GET", `/v1/events?filter=${filter}`), 400, {
      parameter: "filter",
    });
  });
});

/** A query as jQuery.param and ember-fetch write it: each pair encoded, in the order given. */
function sentAs(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
}

// open-event-frontend's admin user page (v1.7.0, app/routes/admin/users/view/events/list.js)
// loads a user's events with `user.query('events', {get_trashed: true, filter})` through
// ember-data-has-many-query, whose serialisation writes `val: null` as an empty value; an array
// of plain values is written `val[]=a&val[]=b`.
Deno.test("[catalog] GET /v1/users/{id}/events reads a bracketed empty val as null and val[] as an array", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const admin = { token: system.admin.token };
  for (const [name, state] of [["Alpha", "published"], ["Beta", "draft"], ["Delta", "published"]]) {
    await system.createEvent(owner.token, { attributes: { name, state } });
  }
  const gamma = await system.createEvent(owner.token, { attributes: { name: "Gamma" } });
  expectStatus(
    await system.call("DELETE", `/v1/events/${gamma.id}`, { token: owner.token }),
    200,
  );
  const events = `/v1/users/${owner.id}/events?get_trashed=true&sort=name`;
  const list = async (pairs: [string, string][], path = events, token = admin.token) => {
    const reply = await system.call("GET", `${path}&${sentAs(pairs)}`, { token });
    expectStatus(reply, 200, sentAs(pairs));
    return names(reply.body);
  };

  await t.step("the page's tabs: deleted-at eq and ne null, sent as an empty value", async () => {
    const live: [string, string][] = [
      ["filter[0][and][0][name]", "deleted-at"],
      ["filter[0][and][0][op]", "eq"],
      ["filter[0][and][0][val]", ""],
      ["filter[0][and][1][name]", "state"],
      ["filter[0][and][1][op]", "eq"],
      ["filter[0][and][1][val]", "published"],
    ];
    assert.deepEqual(await list(live), ["Alpha", "Delta"]);
    const deleted: [string, string][] = [
      ["filter[0][name]", "deleted-at"],
      ["filter[0][op]", "ne"],
      ["filter[0][val]", ""],
    ];
    assert.deepEqual(await list(deleted), ["Gamma"]);
    for (const [op, expected] of [["is_", ["Alpha", "Beta", "Delta"]], ["isnot", ["Gamma"]]]) {
      const pairs: [string, string][] = [
        ["filter[0][name]", "deleted-at"],
        ["filter[0][op]", op as string],
        ["filter[0][val]", ""],
      ];
      assert.deepEqual(await list(pairs), expected, op as string);
    }
  });

  await t.step(
    "a text field's empty value with eq or ne is null too, as jQuery wrote it",
    async () => {
      await system.createTopic("Bare");
      const pictured = await system.createTopic("Pictured");
      const image = { "system-image-url": "https://example.test/a.png" };
      const data = { type: "event-topic", id: pictured, attributes: image };
      expectStatus(
        await system.call("PATCH", `/v1/event-topics/${pictured}`, { ...admin, body: { data } }),
        200,
      );
      const of = (op: string): [string, string][] => [
        ["filter[0][name]", "system-image-url"],
        ["filter[0][op]", op],
        ["filter[0][val]", ""],
      ];
      assert.deepEqual(await list(of("eq"), "/v1/event-topics?sort=name"), ["Bare"]);
      assert.deepEqual(await list(of("ne"), "/v1/event-topics?sort=name"), ["Pictured"]);
      // like takes no null: an empty pattern matches the empty text, as before.
      assert.deepEqual(await list(of("like"), "/v1/event-topics?sort=name"), []);
    },
  );

  await t.step("val[] repeated is the in_ and notin_ list, in the JSON form's answer", async () => {
    const of = (op: string, values: string[]): [string, string][] => [
      ["filter[0][name]", "name"],
      ["filter[0][op]", op],
      ...values.map((v): [string, string] => ["filter[0][val][]", v]),
    ];
    assert.deepEqual(await list(of("in_", ["Beta", "Gamma"])), ["Beta", "Gamma"]);
    assert.deepEqual(await list(of("in", ["Delta"])), ["Delta"]);
    assert.deepEqual(await list(of("notin_", ["Beta", "Gamma"])), ["Alpha", "Delta"]);
    const json = encodeURIComponent(
      JSON.stringify([{ name: "name", op: "notin_", val: ["Beta", "Gamma"] }]),
    );
    const same = await system.call("GET", `${events}&filter=${json}`, admin);
    assert.deepEqual(names(same.body), ["Alpha", "Delta"], "the JSON form's answer");
  });

  await t.step("an anonymous, cached list keeps each val[] list apart", async () => {
    const path = "/v1/events?sort=name";
    const of = (values: string[]): [string, string][] => [
      ["filter[0][name]", "name"],
      ["filter[0][op]", "in_"],
      ...values.map((v): [string, string] => ["filter[0][val][]", v]),
    ];
    const anonymous = async (values: string[]) => {
      const reply = await system.call("GET", `${path}&${sentAs(of(values))}`);
      expectStatus(reply, 200, values.join());
      return names(reply.body);
    };
    assert.deepEqual(await anonymous(["Alpha", "Delta"]), ["Alpha", "Delta"]);
    assert.deepEqual(await anonymous(["Alpha", "Delta"]), ["Alpha", "Delta"]);
    assert.deepEqual(await anonymous(["Alpha"]), ["Alpha"]);
    assert.deepEqual(await anonymous(["Delta", "Alpha"]), ["Alpha", "Delta"]);
  });

  await t.step("what an empty value or val[] cannot mean stays a 400", async () => {
    const refused: [[string, string][], string][] = [
      // lt takes no null: an empty value is the text it was, no date-time.
      [
        [["filter[0][name]", "starts-at"], ["filter[0][op]", "lt"], ["filter[0][val]", ""]],
        "filter",
      ],
      // eq takes one value, not a list.
      [[
        ["filter[0][name]", "name"],
        ["filter[0][op]", "eq"],
        ["filter[0][val][]", "Alpha"],
        ["filter[0][val][]", "Beta"],
      ], "filter"],
      // A list both numbered and pushed to: which is which is anyone's guess.
      [[
        ["filter[0][name]", "name"],
        ["filter[0][op]", "in_"],
        ["filter[0][val][]", "Alpha"],
        ["filter[0][val][0]", "Beta"],
      ], "filter[0][val][]"],
      [[
        ["filter[0][name]", "name"],
        ["filter[0][op]", "in_"],
        ["filter[0][val]", "Alpha"],
        ["filter[0][val][]", "Beta"],
      ], "filter[0][val][]"],
      // Empty brackets inside a group stay a 400: jQuery numbers the items of an array of objects.
      [[["filter[0][and][][name]", "name"]], "filter[0][and][][name]"],
    ];
    for (const [pairs, parameter] of refused) {
      const reply = await system.call("GET", `${events}&${sentAs(pairs)}`, admin);
      expectError(reply, 400, { parameter }, sentAs(pairs));
    }
  });
});

Deno.test("[catalog] GET /v1/events takes a fieldset's names in underscores, and id, as the original did", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  await system.createEvent(owner.token, { attributes: { state: "published" } });
  const reply = await system.call("GET", "/v1/events?fields[event]=location_name,starts_at");
  expectStatus(reply, 200);
  assert.deepEqual(Object.keys(reply.body.data[0].attributes), ["location-name", "starts-at"]);
  // Its schemas declared `id`, so its clients may list it: always sent, nothing more.
  const withId = await system.call("GET", "/v1/events?fields[event]=id,name");
  expectStatus(withId, 200);
  assert.deepEqual(Object.keys(withId.body.data[0].attributes), ["name"]);
  assert.equal(withId.body.data[0].id, reply.body.data[0].id);
  const idOnly = await system.call("GET", `/v1/events/${reply.body.data[0].id}?fields[event]=id`);
  expectStatus(idOnly, 200);
  assert.deepEqual(idOnly.body.data.attributes, {});
  const unknown = await system.call("GET", "/v1/events?fields[event]=name,secret_field");
  expectError(unknown, 400, { parameter: "fields[event]" });
});

Deno.test("[catalog] GET /v1/events/{id} takes include paths in underscores, as the original did", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const topic = await system.createTopic("Music");
  const subTopic = await system.createSubTopic(topic, "Jazz");
  const event = await system.createEvent(owner.token, {
    attributes: { state: "published" },
    relationships: inTopic(topic, subTopic),
  });
  const path = `/v1/events/${event.id}`;
  const dashed = await system.call("GET", `${path}?include=event-topic,event-sub-topic`, {
    token: owner.token,
  });
  const underscored = await system.call("GET", `${path}?include=event_topic,event_sub-topic`, {
    token: owner.token,
  });
  expectStatus(underscored, 200);
  assert.deepEqual(underscored.body.included.map((r: { type: string }) => r.type).sort(), [
    "event-sub-topic",
    "event-topic",
  ]);
  assert.deepEqual(underscored.body, dashed.body);
  const unknown = await system.call("GET", `${path}?include=event_topic,sub_topic`);
  expectError(unknown, 400, { parameter: "include" });
  assert.match(unknown.body.errors[0].detail, /"sub_topic"/);
});
