import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

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
