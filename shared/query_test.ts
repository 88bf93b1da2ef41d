import assert from "node:assert/strict";
import { BadRequestError } from "./errors.ts";
import {
  checkFieldset,
  FILTER_OP_NAMES,
  type FilterNode,
  MAX_INCLUDED_RELATIONSHIPS,
  ownerQueryOf,
  ownerQueryText,
  parseListQuery,
  parseSingleQuery,
  type QuerySpec,
} from "./query.ts";
import { dateTime } from "./schemas/catalog.ts";
import { NULL_TAKING_OPS, numberPushedItems } from "./query_filter.ts";

const spec: QuerySpec = {
  fields: {
    code: { column: "code", type: "string" },
    id: { column: "id", type: "bigint" },
    "tickets-number": { column: "tickets_number", type: "integer" },
    value: { column: "value", type: "number" },
    "is-active": { column: "is_active", type: "boolean" },
    "valid-from": { column: "valid_from", type: "datetime" },
  },
  includes: ["event", "tickets", "event.event-topic"],
  sparse: { "discount-code": ["code", "value", "event"], event: ["name"] },
  extra: ["get_trashed"],
  defaultSort: [{ column: "code", desc: false }],
};

function filter(value: unknown): FilterNode | undefined {
  return parseListQuery({ filter: JSON.stringify(value) }, spec).filter;
}

function assertBadParameter(fn: () => unknown, parameter: string, detail?: RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof BadRequestError, String(error));
    assert.equal(error.source?.parameter, parameter);
    assert.match(error.message, detail ?? /^Cannot /);
    return true;
  });
}

Deno.test("[query] parseListQuery applies defaults", () => {
  assert.deepEqual(parseListQuery({}, spec), {
    sort: [{ column: "code", desc: false }],
    page: { size: 20, number: 1 },
    include: [],
    fields: {},
    extra: {},
  });
  assert.deepEqual(parseListQuery({}, { fields: {} }).sort, []);
});

Deno.test("[query] parseListQuery reads sort, page, include, fields and extra", () => {
  const q = parseListQuery({
    sort: "code,-valid-from",
    "page[size]": "0",
    "page[number]": "3",
    include: "event,event.event-topic,event",
    "fields[discount-code]": "code,event",
    "fields[event]": "",
    get_trashed: "true",
  }, spec);
  assert.deepEqual(q.sort, [{ column: "code", desc: false }, { column: "valid_from", desc: true }]);
  assert.deepEqual(q.page, { size: 0, number: 3 });
  assert.deepEqual(q.include, ["event", "event.event-topic"]);
  assert.deepEqual(q.fields, { "discount-code": ["code", "event"], event: [] });
  assert.deepEqual(q.extra, { get_trashed: "true" });
  assert.equal(q.filter, undefined);
});

Deno.test("[query] parseListQuery parses every filter op with coercion", async (t) => {
  const cases: [string, unknown, FilterNode][] = [
    ["eq", { name: "code", op: "eq", val: "X" }, {
      column: "code",
      op: "eq",
      value: "X",
      type: "string",
    }],
    ["eq null", { name: "code", op: "eq", val: null }, {
      column: "code",
      op: "eq",
      value: null,
      type: "string",
    }],
    ["ne", { name: "tickets-number", op: "ne", val: "4" }, {
      column: "tickets_number",
      op: "ne",
      value: 4,
      type: "integer",
    }],
    ["lt", { name: "value", op: "lt", val: "2.5" }, {
      column: "value",
      op: "lt",
      value: 2.5,
      type: "number",
    }],
    ["le", { name: "value", op: "le", val: 3 }, {
      column: "value",
      op: "le",
      value: 3,
      type: "number",
    }],
    ["gt", { name: "tickets-number", op: "gt", val: -1 }, {
      column: "tickets_number",
      op: "gt",
      value: -1,
      type: "integer",
    }],
    ["ge", { name: "valid-from", op: "ge", val: "2024-01-01T00:00:00Z" }, {
      column: "valid_from",
      op: "ge",
      value: new Date("2024-01-01T00:00:00Z"),
      type: "datetime",
    }],
    ["like", { name: "code", op: "like", val: "SUM%" }, {
      column: "code",
      op: "like",
      value: "SUM%",
      type: "string",
    }],
    ["ilike", { name: "code", op: "ilike", val: "%sum%" }, {
      column: "code",
      op: "ilike",
      value: "%sum%",
      type: "string",
    }],
    ["in_", { name: "is-active", op: "in_", val: [true, "false"] }, {
      column: "is_active",
      op: "in_",
      value: [true, false],
      type: "boolean",
    }],
    ["notin_", { name: "tickets-number", op: "notin_", val: [1, "2"] }, {
      column: "tickets_number",
      op: "notin_",
      value: [1, 2],
      type: "integer",
    }],
    ["is_", { name: "valid-from", op: "is_", val: null }, {
      column: "valid_from",
      op: "is_",
      value: null,
      type: "datetime",
    }],
    ["isnot", { name: "valid_from", op: "isnot", val: null }, {
      column: "valid_from",
      op: "isnot",
      value: null,
      type: "datetime",
    }],
  ];
  for (const [name, condition, expected] of cases) {
    await t.step(name, () => {
      assert.deepEqual(filter([condition]), { and: [expected] });
    });
  }
});

Deno.test("[query] parseListQuery parses nested and/or/not filters", () => {
  const code = { name: "code", op: "eq", val: "A" };
  const leaf = { column: "code", op: "eq", value: "A", type: "string" };
  assert.deepEqual(filter({ or: [code, { and: [code, { not: code }] }] }), {
    or: [leaf, { and: [leaf, { not: leaf }] }],
  });
  assert.deepEqual(filter([{ not: { or: [] } }]), { and: [{ not: { or: [] } }] });
  assert.equal(filter([]), undefined);
  // Five levels of groups are fine: the top-level array and four nots.
  assert.ok(filter([{ not: { not: { not: { not: code } } } }]));
});

Deno.test("[query] parseListQuery rejects bad filters with parameter filter", async (t) => {
  const code = { name: "code", op: "eq", val: "A" };
  const cases: [string, string][] = [
    ["bad JSON", "[{"],
    ["a string", '"code"'],
    ["a number inside the array", "[1]"],
    ["an unknown field", JSON.stringify([{ name: "secret", op: "eq", val: 1 }])],
    ["a missing name", JSON.stringify([{ op: "eq", val: 1 }])],
    ["an unknown op", JSON.stringify([{ name: "code", op: "==", val: "A" }])],
    ["a missing op", JSON.stringify([{ name: "code", val: "A" }])],
    ["a missing val", JSON.stringify([{ name: "code", op: "eq" }])],
    ["an unknown key", JSON.stringify([{ ...code, field: "value" }])],
    ["a string for an integer", JSON.stringify([{ name: "tickets-number", op: "eq", val: "x" }])],
    ["a fraction for an integer", JSON.stringify([{ name: "tickets-number", op: "eq", val: 1.5 }])],
    ["a string for a number", JSON.stringify([{ name: "value", op: "gt", val: "ten" }])],
    ["an empty string for a number", JSON.stringify([{ name: "value", op: "gt", val: "" }])],
    ["a word for a boolean", JSON.stringify([{ name: "is-active", op: "eq", val: "yes" }])],
    ["a bad datetime", JSON.stringify([{ name: "valid-from", op: "ge", val: "tomorrow" }])],
    ["year 0", JSON.stringify([{ name: "valid-from", op: "gt", val: "0000-01-01" }])],
    [
      "a date past year 9999",
      JSON.stringify([{ name: "valid-from", op: "lt", val: "9999-12-31T23:59:59-14:00" }]),
    ],
    ["a NUL in a string", JSON.stringify([{ name: "code", op: "eq", val: "a\u0000b" }])],
    ["a NUL in a pattern", JSON.stringify([{ name: "code", op: "like", val: "a\u0000%" }])],
    ["a pattern ending in a backslash", JSON.stringify([{ name: "code", op: "like", val: "%\\" }])],
    ["a pattern ending in three", JSON.stringify([{ name: "code", op: "ilike", val: "a\\\\\\" }])],
    [
      "an impossible datetime",
      JSON.stringify([{ name: "valid-from", op: "ge", val: "2024-13-45" }]),
    ],
    ["February 30", JSON.stringify([{ name: "valid-from", op: "gt", val: "2027-02-30" }])],
    [
      "February 29 of a common year",
      JSON.stringify([{ name: "valid-from", op: "gt", val: "2027-02-29T10:00:00Z" }]),
    ],
    ["hour 24", JSON.stringify([{ name: "valid-from", op: "gt", val: "2027-03-01T24:00:00Z" }])],
    [
      "an offset of three digits",
      JSON.stringify([{ name: "valid-from", op: "gt", val: "2027-03-01T10:00:00+053" }]),
    ],
    [
      "an offset of 25 hours",
      JSON.stringify([{ name: "valid-from", op: "gt", val: "2027-03-01T10:00:00+25:00" }]),
    ],
    [
      "an integer beyond its 32-bit column",
      JSON.stringify([{ name: "tickets-number", op: "gt", val: 3_000_000_000 }]),
    ],
    [
      "a negative one beyond it, as text",
      JSON.stringify([{ name: "tickets-number", op: "in_", val: ["-2147483649"] }]),
    ],
    ["a boolean for a string", JSON.stringify([{ name: "code", op: "eq", val: true }])],
    ["an object value", JSON.stringify([{ name: "code", op: "eq", val: { a: 1 } }])],
    ["in_ without an array", JSON.stringify([{ name: "code", op: "in_", val: "A" }])],
    ["notin_ with a bad element", JSON.stringify([{ name: "value", op: "notin_", val: [1, "x"] }])],
    ["is_ with a value", JSON.stringify([{ name: "code", op: "is_", val: "A" }])],
    ["isnot with a value", JSON.stringify([{ name: "code", op: "isnot", val: false }])],
    ["like on a number", JSON.stringify([{ name: "value", op: "like", val: "1%" }])],
    ["ilike with a number", JSON.stringify([{ name: "code", op: "ilike", val: 1 }])],
    ["and without an array", JSON.stringify({ and: code })],
    ["a group with extra keys", JSON.stringify({ and: [code], or: [code] })],
    ["too deep", JSON.stringify([{ not: { not: { not: { not: { not: code } } } } }])],
    ["too many conditions", JSON.stringify(Array.from({ length: 51 }, () => code))],
    [
      "too many in_ values",
      JSON.stringify([{ name: "code", op: "in_", val: Array(51).fill("A") }]),
    ],
  ];
  for (const [name, text] of cases) {
    await t.step(name, () => {
      assertBadParameter(
        () => parseListQuery({ filter: text }, spec),
        "filter",
        /^Cannot filter: /,
      );
    });
  }
  await t.step("the detail names the problem", () => {
    assertBadParameter(
      () => filter([{ name: "secret", op: "eq", val: 1 }]),
      "filter",
      /unknown field "secret"/,
    );
  });
});

Deno.test("[query] names outside the JSON:API families are ignored, as the original did", () => {
  // open-event-frontend's hints, and what ember-data's queryRecord puts in the checkout lookup.
  const foreign = {
    public: "true",
    cache: "true",
    nocache: "true",
    code: "SUMMER",
    eventIdentifier: "b8324ae2",
    color: "red",
    "": "1",
  };
  assert.deepEqual(parseSingleQuery(foreign, {}), { include: [], fields: {}, extra: {} });
  assert.equal(parseListQuery({ ...foreign, "page[size]": "5" }, spec).page.size, 5);
  assert.deepEqual(
    parseSingleQuery({ ...foreign, get_trashed: "true" }, { extra: ["get_trashed"] }).extra,
    { get_trashed: "true" },
    "a route's own names are still read",
  );
});

Deno.test("[query] parseListQuery rejects bad parameters naming them", async (t) => {
  const cases: [string, Record<string, string>, string][] = [
    ["a filter in another form", { "filter[code]": "X" }, "filter[code]"],
    ["fields without a type", { fields: "code" }, "fields"],
    ["a non-numeric page size", { "page[size]": "ten" }, "page[size]"],
    ["a negative page size", { "page[size]": "-1" }, "page[size]"],
    ["a fractional page size", { "page[size]": "1.5" }, "page[size]"],
    ["a page size over the maximum", { "page[size]": "1001" }, "page[size]"],
    ["page number 0", { "page[number]": "0" }, "page[number]"],
    ["an empty page number", { "page[number]": "" }, "page[number]"],
    ["a huge page number", { "page[number]": "99999999999999999999" }, "page[number]"],
    ["an unknown page key", { "page[offset]": "1" }, "page[offset]"],
    ["an unknown sort key", { sort: "code,secret" }, "sort"],
    ["an empty sort key", { sort: "code," }, "sort"],
    ["a bare minus in sort", { sort: "-" }, "sort"],
    ["an unknown include", { include: "event,owner" }, "include"],
    ["fields for an unknown type", { "fields[user]": "email" }, "fields[user]"],
    ["an unknown sparse field", { "fields[event]": "name,secret" }, "fields[event]"],
  ];
  for (const [name, query, parameter] of cases) {
    await t.step(name, () => assertBadParameter(() => parseListQuery(query, spec), parameter));
  }
  await t.step("an include on a route without includes", () => {
    assertBadParameter(() => parseListQuery({ include: "event" }, { fields: {} }), "include");
  });
});

Deno.test("[query] parseSingleQuery reads include, fields and extra, and ignores a list's parameters", () => {
  assert.deepEqual(
    parseSingleQuery({ include: "tickets", "fields[event]": "name", get_trashed: "true" }, spec),
    { include: ["tickets"], fields: { event: ["name"] }, extra: { get_trashed: "true" } },
  );
  assert.deepEqual(parseSingleQuery({}, {}), { include: [], fields: {}, extra: {} });
  // The original's detail views read include and fields only.
  const listParameters = { filter: "[{", sort: "secret", "page[size]": "x", "page[number]": "0" };
  assert.deepEqual(parseSingleQuery(listParameters, spec), { include: [], fields: {}, extra: {} });
  // A name of another route (not in this one's `extra`) is ignored, as any other foreign name.
  assert.deepEqual(parseSingleQuery({ permanent: "1" }, spec).extra, {});
  assertBadParameter(() => parseSingleQuery({ include: "owner" }, spec), "include");
  assertBadParameter(
    () => parseSingleQuery({ "fields[event]": "secret" }, spec),
    "fields[event]",
  );
});

Deno.test("[query] a fieldset may list id, as the original's schemas declared it", () => {
  assert.deepEqual(parseSingleQuery({ "fields[event]": "id,name" }, spec).fields, {
    event: ["name"],
  });
  assert.deepEqual(parseListQuery({ "fields[event]": "id" }, spec).fields, { event: [] });
  assert.deepEqual(checkFieldset({ event: ["id", "starts_at"] }, "event", ["starts-at"]), [
    "starts-at",
  ]);
  assert.deepEqual(parseListQuery({ "fields[discount-code]": "code,id" }, spec).fields, {
    "discount-code": ["code"],
  });
  // Only `id`: other names outside the type stay a 400.
  assertBadParameter(() => parseListQuery({ "fields[event]": "id,type" }, spec), "fields[event]");
});

Deno.test("[query] parseListQuery keeps escaped backslashes in like patterns", () => {
  // `a\\%` is "a, a literal backslash, anything"; `x\\` ends in an escaped backslash.
  for (const pattern of ["a\\\\%", "x\\\\"]) {
    const parsed = JSON.stringify(filter([{ name: "code", op: "like", val: pattern }]));
    assert.ok(parsed.includes(JSON.stringify(pattern)), parsed);
  }
});

Deno.test("[query] a fieldset marked ['*'] takes any well-formed name (types another service owns)", () => {
  const foreign: QuerySpec = { ...spec, sparse: { ...spec.sparse, "stripe-authorization": ["*"] } };
  const parsed = parseListQuery(
    { "fields[stripe-authorization]": "stripe-publishable-key" },
    foreign,
  );
  assert.deepEqual(parsed.fields["stripe-authorization"], ["stripe-publishable-key"]);
  assertBadParameter(
    () => parseListQuery({ "fields[stripe-authorization]": "Bad Name!" }, foreign),
    "fields[stripe-authorization]",
  );
});

Deno.test("[query] datetime filter values are exact instants, whatever the host's zone", async (t) => {
  const at = (val: string) =>
    (filter([{ name: "valid-from", op: "ge", val }]) as { and: { value: Date }[] }).and[0].value;
  await t.step("an offset is honoured, a leap day is a day", () => {
    assert.equal(at("2027-03-03T08:00:00+08:00").toISOString(), "2027-03-03T00:00:00.000Z");
    assert.equal(at("2028-02-29").toISOString(), "2028-02-29T00:00:00.000Z");
    assert.equal(at("0005-03-01 10:30").toISOString(), "0005-03-01T10:30:00.000Z");
  });
  await t.step("an offset without a colon or minutes is read as request bodies read it", () => {
    for (const val of ["2027-03-03T08:00:00+0800", "2027-03-03T08:00:00+08"]) {
      assert.equal(at(val).toISOString(), "2027-03-03T00:00:00.000Z", val);
    }
    assert.equal(at("2027-03-03T08:00:00-05").toISOString(), "2027-03-03T13:00:00.000Z");
  });
  await t.step("a bigint id takes values beyond 32 bits", () => {
    const node = filter([{ name: "id", op: "eq", val: "3000000000" }]);
    assert.deepEqual(node, {
      and: [{ column: "id", op: "eq", value: 3_000_000_000, type: "bigint" }],
    });
  });
  await t.step(
    "a value without an offset is UTC in any TZ (not the host's local time)",
    async () => {
      const script = `
      import { parseListQuery } from ${JSON.stringify(import.meta.resolve("./query.ts"))};
      const spec = { fields: { at: { column: "at", type: "datetime" } } };
      const bound = (val) => parseListQuery(
        { filter: JSON.stringify([{ name: "at", op: "ge", val }]) }, spec,
      ).filter.and[0].value.toISOString();
      console.log(bound("2027-03-03T00:00:00"), bound("2027-03-03"));
    `;
      for (const tz of ["Asia/Singapore", "America/New_York"]) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["eval", script],
          env: { TZ: tz },
          stdout: "piped",
          stderr: "inherit",
        }).output();
        assert.ok(out.success, `deno eval under TZ=${tz}`);
        assert.equal(
          new TextDecoder().decode(out.stdout).trim(),
          "2027-03-03T00:00:00.000Z 2027-03-03T00:00:00.000Z",
          `TZ=${tz}`,
        );
      }
    },
  );
});

Deno.test("[query] page values are read as the original's int() read them", async (t) => {
  // flask-rest-jsonapi checked page[size] and page[number] with Python's int(): spaces around, a
  // sign, leading zeros and single underscores between digits (PEP 515) all passed.
  const page = (query: Record<string, string>) => parseListQuery(query, spec).page;
  await t.step("spaces around, a sign, leading zeros, underscores between digits", () => {
    const sizes: [string, number][] = [
      [" 2", 2],
      ["2 ", 2],
      ["\t2\n", 2],
      ["+2", 2],
      [" +2 ", 2],
      ["007", 7],
      ["1_0", 10],
      ["1_000", 1000],
      ["+0", 0],
      ["-0", 0],
    ];
    for (const [text, size] of sizes) {
      assert.equal(page({ "page[size]": text }).size, size, JSON.stringify(text));
    }
    for (const [text, number] of [[" 3", 3], ["+3", 3], ["0_3", 3], ["3 ", 3]] as const) {
      assert.equal(page({ "page[number]": text }).number, number, JSON.stringify(text));
    }
  });
  await t.step("what int() refused stays a 400 naming the parameter", () => {
    const unreadable = [
      "",
      " ",
      "+",
      "+ 2",
      "2 2",
      "1__0",
      "_1",
      "1_",
      "+_1",
      "2.0",
      "1e2",
      "0x10",
      // Python's int() also read other scripts' digits; nobody sends them, so they stay a 400.
      "\uff12",
    ];
    for (const text of unreadable) {
      for (const key of ["page[size]", "page[number]"]) {
        assertBadParameter(() => parseListQuery({ [key]: text }, spec), key, /^Cannot page/);
      }
    }
  });
  await t.step("an integer too large to page by is a 400 that says so, not that it is none", () => {
    // A client's review: "99999999999999999999" was answered "must be an integer of at least 1".
    for (const text of ["99999999999999999999", "9007199254740992"]) {
      assertBadParameter(
        () => parseListQuery({ "page[number]": text }, spec),
        "page[number]",
        /^Cannot page: page\[number\] must be at most 9007199254740991$/,
      );
    }
    assert.equal(page({ "page[number]": "9007199254740991" }).number, Number.MAX_SAFE_INTEGER);
  });
  await t.step(
    "negative sizes and numbers below 1 stay a 400 (the original's database failed)",
    () => {
      for (const text of ["-1", " -2", "-1_0"]) {
        assertBadParameter(() => parseListQuery({ "page[size]": text }, spec), "page[size]");
      }
      for (const text of ["0", "-0", "+0", " 0 ", "-1"]) {
        assertBadParameter(() => parseListQuery({ "page[number]": text }, spec), "page[number]");
      }
    },
  );
});

Deno.test("[query] a filter's date-time takes every form a body's does, as the same instant", async (t) => {
  const at = (val: string) =>
    (filter([{ name: "valid-from", op: "ge", val }]) as { and: { value: Date }[] }).and[0].value;
  await t.step("with an offset: what bodies read, read alike", () => {
    const forms = [
      "2027-3-3T8:00:00+08:00",
      "2027-03-03 08:00+0800",
      "2027-3-3 8:5+08",
      "2027-3-03T0:00:00.250Z",
      "2027-03-03T10:00:00.123456-0530",
      "2027-12-31 23:59:59+00:00",
    ];
    for (const form of forms) {
      assert.equal(at(form).toISOString(), dateTime.parse(form).toISOString(), form);
    }
  });
  await t.step("without one, a body's 422 is UTC in a filter, a date alone midnight", () => {
    const naive: [string, string][] = [
      ["2027-3-3 8:05", "2027-03-03T08:05:00.000Z"],
      ["2027-3-3T8:5:9", "2027-03-03T08:05:09.000Z"],
      ["2027-3-3", "2027-03-03T00:00:00.000Z"],
      ["2027-03-03t08:00z", "2027-03-03T08:00:00.000Z"],
      // Month first, as Postgres read it (the web client's explore page sends its custom dates so).
      ["12-30-2027", "2027-12-30T00:00:00.000Z"],
      ["3/1/2027", "2027-03-01T00:00:00.000Z"],
    ];
    for (const [form, instant] of naive) {
      assert.equal(at(form).toISOString(), instant, form);
      assert.equal(dateTime.safeParse(form).success, false, form);
    }
  });
  await t.step("what neither reads is a 400 naming filter", () => {
    const refused = [
      "2027-3-3T8",
      "2027-3-3 8:05:00 +05:30",
      "2027-003-03",
      "2027-3-3T8:60Z",
      "2027-2-29",
      "2027-3-3T8:00+0560",
    ];
    for (const val of refused) {
      assertBadParameter(() => filter([{ name: "valid-from", op: "ge", val }]), "filter");
    }
  });
});

Deno.test("[query] an empty sort or include is none, as the original read them", () => {
  const query = parseListQuery({ sort: "", include: " " }, spec);
  assert.deepEqual(query.sort, spec.defaultSort);
  assert.deepEqual(query.include, []);
  assert.deepEqual(parseSingleQuery({ include: "" }, spec).include, []);
});

Deno.test("[query] the op spellings the original also took", async (t) => {
  const leaf = (op: string, val: unknown, name = "code") => filter([{ name, op, val }]);
  const cases: [string, unknown, unknown][] = [
    ["in", ["A", "B"], { column: "code", op: "in_", value: ["A", "B"], type: "string" }],
    ["notin", ["A"], { column: "code", op: "notin_", value: ["A"], type: "string" }],
    ["is", null, { column: "code", op: "is_", value: null, type: "string" }],
    ["__eq__", "A", { column: "code", op: "eq", value: "A", type: "string" }],
    ["__ge__", "B", { column: "code", op: "ge", value: "B", type: "string" }],
    ["startswith", "SUM", { column: "code", op: "like", value: "SUM%", type: "string" }],
    ["endswith", "25", { column: "code", op: "like", value: "%25", type: "string" }],
    ["contains", "MM", { column: "code", op: "like", value: "%MM%", type: "string" }],
    ["notlike", "S%", { not: { column: "code", op: "like", value: "S%", type: "string" } }],
    ["notilike", "s%", { not: { column: "code", op: "ilike", value: "s%", type: "string" } }],
  ];
  for (const [op, val, expected] of cases) {
    await t.step(op, () => assert.deepEqual(leaf(op, val), { and: [expected] }));
  }
  await t.step("each keeps its op's checks", () => {
    assertBadParameter(() => leaf("startswith", "1", "value"), "filter", /only on text fields/);
    assertBadParameter(() => leaf("in", "A"), "filter", /takes an array/);
    assertBadParameter(() => leaf("contains", "a\\"), "filter", /lone backslash/);
    assertBadParameter(() => leaf("toString", "A"), "filter", /unknown op/);
  });
});

Deno.test("[query] ownerQueryOf splits off include and fields, and ownerQueryText rebuilds them", () => {
  const owner = ownerQueryOf({
    include: "tickets, event-topic,tickets",
    "fields[event]": "name, tickets",
    "fields[ticket]": "",
    get_trashed: "true",
  });
  assert.deepEqual(owner, {
    include: ["tickets", "event-topic"],
    fields: { event: ["name", "tickets"], ticket: [] },
    rest: { get_trashed: "true" },
  });
  assert.deepEqual(ownerQueryText(owner), {
    include: "tickets,event-topic",
    "fields[event]": "name,tickets",
    "fields[ticket]": "",
  });
  assert.deepEqual(ownerQueryOf({ include: " " }).include, []);
  // An empty path is the owner's 400 too, and would be lost in the text it reads.
  for (const include of [",", "event-topic,", " , "]) {
    assertBadParameter(() => ownerQueryOf({ include }), "include");
  }
  // Dashed, as the owner reads them, and each once in either spelling.
  assert.deepEqual(ownerQueryOf({ include: "event_topic,event-topic,discount_codes" }).include, [
    "event-topic",
    "discount-codes",
  ]);
  // More paths than one include may go through is the owner's 400, said before asking it (the
  // bus request carries at most that many).
  const many = Array.from({ length: MAX_INCLUDED_RELATIONSHIPS + 1 }, (_, i) => `p${i}`).join();
  assertBadParameter(() => ownerQueryOf({ include: many }), "include");
  assert.equal(
    ownerQueryOf({ include: many.split(",").slice(1).join() }).include.length,
    MAX_INCLUDED_RELATIONSHIPS,
  );
});

/** A to-many relationship filter of the test resource: its codes' tickets, by type. */
const tickets = {
  many: true,
  table: "tickets",
  on: { parent: "codes.id", related: "tickets.code_id" },
  fields: { type: { column: "type", type: "string" as const } },
  softDeleted: true,
};

Deno.test("[query] a relationship filter reads its val against the related attributes, within the bounds", async (t) => {
  const event = { ...tickets, many: false, table: "events" };
  const related: QuerySpec = { ...spec, relationships: { tickets, event } };
  const read = (value: unknown) =>
    parseListQuery({ filter: JSON.stringify(value) }, related).filter;
  const refused = (value: unknown, detail: RegExp) =>
    assert.throws(() => read(value), (e: unknown) => {
      assert.ok(e instanceof BadRequestError);
      assert.deepEqual(e.source, { parameter: "filter" });
      assert.match(e.message, detail);
      return true;
    });

  await t.step("has on a to-one, any on a to-many, each with a filter as its val", () => {
    assert.deepEqual(
      read([{ name: "tickets", op: "any", val: { name: "type", op: "eq", val: "free" } }]),
      {
        and: [{
          related: tickets,
          filter: { column: "type", op: "eq", value: "free", type: "string" },
        }],
      },
    );
    assert.deepEqual(read({ not: { name: "event", op: "has", val: [] } }), {
      not: { related: event, filter: { and: [] } },
    });
  });

  await t.step("the wrong op, a val that is no filter, a name of the parent inside: 400", () => {
    refused([{ name: "tickets", op: "has", val: {} }], /to-many relationship, filtered with "any"/);
    refused([{ name: "event", op: "any", val: {} }], /to-one relationship, filtered with "has"/);
    refused([{ name: "event", op: "has", val: "x" }], /the val of "event" must be a filter/);
    refused(
      [{ name: "event", op: "has", val: { name: "code", op: "eq", val: "x" } }],
      /unknown field "code"/,
    );
    refused(
      [{ name: "event", op: "has", val: { name: "tickets", op: "any", val: {} } }],
      /"tickets" is not a relationship filterable here/,
    );
    refused([{ name: "event", op: "has", val: {}, extra: 1 }], /unknown key "extra"/);
  });

  await t.step("its val counts toward the depth and condition bounds", () => {
    let deep: unknown = { name: "type", op: "eq", val: "x" };
    for (let i = 0; i < 4; i++) deep = { not: deep };
    refused([{ name: "tickets", op: "any", val: deep }], /nest deeper/);
    const many = Array.from({ length: 50 }, () => ({ name: "type", op: "eq", val: "x" }));
    refused([{ name: "tickets", op: "any", val: many }], /more than 50 conditions/);
  });
});

/**
 * A filter as jQuery.param and ember-fetch send an array of objects (open-event-frontend's
 * ember-data-has-many-query): `filter[0][and][0][name]=...`, every array indexed as `qs` does,
 * every leaf the string the URL carries.
 */
function brackets(value: unknown, prefix = "filter"): Record<string, string> {
  if (value === null || typeof value !== "object") return { [prefix]: String(value) };
  const entries = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value);
  return Object.assign({}, ...entries.map(([k, v]) => brackets(v, `${prefix}[${k}]`)));
}

Deno.test("[query] the bracketed filter of the frontend's has-many queries reads as the JSON form", async (t) => {
  const related: QuerySpec = { ...spec, relationships: { tickets } };
  const same = (value: unknown[]) => {
    const query = brackets(value);
    assert.deepEqual(
      parseListQuery(query, related).filter,
      parseListQuery({ filter: JSON.stringify(value) }, related).filter,
      JSON.stringify(query),
    );
  };
  await t.step("the public event page's ticket window", () => {
    const query = {
      reload: "true",
      "filter[0][and][0][name]": "valid-from",
      "filter[0][and][0][op]": "le",
      "filter[0][and][0][val]": "2026-12-04T17:15:52.000Z",
      "filter[0][and][1][name]": "valid-from",
      "filter[0][and][1][op]": "ge",
      "filter[0][and][1][val]": "2026-12-01T00:00:00.000Z",
    };
    const at = (text: string) => new Date(text);
    assert.deepEqual(parseListQuery(query, spec).filter, {
      and: [{
        and: [
          {
            column: "valid_from",
            op: "le",
            value: at(query["filter[0][and][0][val]"]),
            type: "datetime",
          },
          {
            column: "valid_from",
            op: "ge",
            value: at(query["filter[0][and][1][val]"]),
            type: "datetime",
          },
        ],
      }],
    });
  });
  await t.step("and, or, not, in_ with val[0] and val[1]", () => {
    same([
      { name: "code", op: "eq", val: "A" },
      {
        or: [
          { not: { name: "code", op: "in_", val: ["B", "C"] } },
          { and: [{ name: "value", op: "gt", val: 1.5 }, { name: "id", op: "notin_", val: [1] }] },
        ],
      },
    ]);
  });
  await t.step("integers and booleans, which the URL carries as text", () => {
    same([
      { name: "tickets-number", op: "eq", val: 5 },
      { name: "is-active", op: "eq", val: true },
      { name: "is-active", op: "ne", val: false },
      { name: "id", op: "in_", val: [1, 2] },
    ]);
  });
  await t.step("a filter through a relationship", () => {
    same([{ name: "tickets", op: "any", val: { name: "type", op: "eq", val: "free" } }]);
    same([{ name: "tickets", op: "any", val: [{ name: "type", op: "like", val: "f%" }] }]);
  });
  await t.step("at the bounds: 50 conditions of 50 in_ values, five levels of groups", () => {
    same(Array(50).fill({ name: "code", op: "in_", val: Array(50).fill("A") }));
    const inValues = { name: "code", op: "in_", val: ["a", "b"] };
    // 11 brackets: filter[0][and][0][or][0][and][0][and][0][val][1].
    same([{ and: [{ or: [{ and: [{ and: [inValues] }] }] }] }]);
    same([{ or: [{ not: { name: "tickets", op: "any", val: [{ ...inValues, name: "type" }] } }] }]);
  });
  await t.step("an empty val is null where the op takes null, as jQuery writes null", () => {
    // Every spelling, each on a text and a date-time field: the bracketed empty value reads as
    // the JSON form's null with an op that takes null, as its text "" with any other.
    for (const op of FILTER_OP_NAMES) {
      for (const name of ["code", "valid-from"]) {
        const read = (query: Record<string, string>) => {
          try {
            return parseListQuery(query, spec).filter;
          } catch (error) {
            return (error as Error).message;
          }
        };
        const val = NULL_TAKING_OPS.has(op) ? null : "";
        assert.deepEqual(
          read(brackets([{ name, op, val: "" }])),
          read({ filter: JSON.stringify([{ name, op, val }]) }),
          `${name} ${op}`,
        );
      }
    }
  });
  await t.step("the ops that take null are exactly those whose JSON form takes null", () => {
    for (const op of FILTER_OP_NAMES) {
      let takes = true;
      try {
        filter([{ name: "valid-from", op, val: null }]);
      } catch {
        takes = false;
      }
      assert.equal(NULL_TAKING_OPS.has(op), takes, op);
    }
  });
  await t.step("in_ and notin_ from val[] items, numbered as sent", () => {
    const sent = numberPushedItems([
      ["filter[0][name]", "code"],
      ["filter[0][op]", "notin_"],
      ["filter[0][val][]", "B"],
      ["filter[0][val][]", "A"],
      ["filter[1][name]", "id"],
      ["filter[1][op]", "in"],
      ["filter[1][val][]", "7"],
    ]);
    assert.deepEqual(
      parseListQuery(Object.fromEntries(sent), spec).filter,
      filter([
        { name: "code", op: "notin_", val: ["B", "A"] },
        { name: "id", op: "in", val: [7] },
      ]),
    );
  });
  await t.step("a single resource ignores it, as it ignores filter", () => {
    assert.deepEqual(parseSingleQuery(brackets([{ name: "code", op: "eq", val: "A" }]), spec), {
      include: [],
      fields: {},
      extra: {},
    });
  });
});

Deno.test("[query] a bracketed filter is refused where its JSON form would be, and when malformed", async (t) => {
  const code = { name: "code", op: "eq", val: "A" };
  const refused = (
    name: string,
    query: Record<string, string>,
    parameter: string,
    detail?: RegExp,
  ) => t.step(name, () => assertBadParameter(() => parseListQuery(query, spec), parameter, detail));

  await refused(
    "both forms at once",
    { filter: JSON.stringify([code]), ...brackets([code]) },
    "filter",
    /both/,
  );
  await refused(
    "a gap in the indices",
    {
      ...brackets([code]),
      "filter[2][name]": "code",
      "filter[2][op]": "eq",
      "filter[2][val]": "B",
    },
    "filter",
    /filter\[2\]/,
  );
  await refused(
    "a gap among in_ values",
    { ...brackets([{ name: "code", op: "in_", val: ["A"] }]), "filter[0][val][3]": "B" },
    "filter",
  );
  await refused(
    "numbers and names mixed in one bracket",
    { ...brackets([code]), "filter[0][0]": "x" },
    "filter",
    /filter\[0\]/,
  );
  await refused(
    "a value that is also a group",
    { ...brackets([code]), "filter[0][val][0]": "B" },
    "filter",
  );
  await refused(
    "empty brackets",
    { "filter[0][name]": "code", "filter[0][val][]": "A" },
    "filter[0][val][]",
  );
  await refused(
    "an index with a leading zero",
    { "filter[0][name]": "code", "filter[01][name]": "code" },
    "filter[01][name]",
  );
  await refused(
    "a __proto__ name is a key like any other",
    { ...brackets([code]), "filter[0][__proto__][name]": "x" },
    "filter",
    /unknown key "__proto__"/,
  );
  await refused("a malformed key", { "filter[0][name": "code" }, "filter[0][name");
  await refused("an index past the bound", { "filter[50][name]": "code" }, "filter[50][name]");
  await refused(
    "a huge index",
    { "filter[99999999999999999999][name]": "code" },
    "filter[99999999999999999999][name]",
  );
  await refused(
    "51 in_ values, the last past the bound",
    brackets([{ name: "code", op: "in_", val: Array(51).fill("A") }]),
    "filter[0][val][50]",
    /index other than 0 to 49/,
  );
  await refused(
    "more brackets than any filter within the depth bound has",
    { [`filter[0]${"[not]".repeat(20)}[name]`]: "code" },
    `filter[0]${"[not]".repeat(20)}[name]`,
  );
  await refused(
    "too many keys",
    Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`filter[0][k${i}]`, "x"])),
    "filter",
  );
  // Within those bounds, the JSON form's own checks, word for word.
  for (
    const [name, value] of [
      ["too deep", [{ not: { not: { not: { not: { not: code } } } } }]],
      [
        "too many conditions",
        [...Array(49).fill(code), { and: [code, code] }],
      ],
      ["an unknown field", [{ name: "secret", op: "eq", val: "1" }]],
      ["a word for an integer", [{ name: "tickets-number", op: "eq", val: "five" }]],
      ["is_ with a value", [{ name: "code", op: "is_", val: "A" }]],
      ["an and that is no array", [{ and: code }]],
    ] as [string, unknown[]][]
  ) {
    let expected = "";
    try {
      parseListQuery({ filter: JSON.stringify(value) }, spec);
    } catch (error) {
      expected = (error as Error).message;
    }
    await refused(name, brackets(value), "filter", new RegExp(`^${RegExp.escape(expected)}$`));
  }
  await refused(
    "another filter[x] stays an unknown parameter",
    {
      ...brackets([code]),
      "filter[code]": "A",
    },
    "filter[code]",
    /unknown parameter/,
  );
  await refused("a bracketed object at the top", brackets({ and: [code] }), "filter[and][0][name]");
});

// A key named again counts where it first comes, as SQL orders by it: also when named through
// both spellings the original's clients send (`tickets-number`, `tickets_number`).
Deno.test("[query] a sort key named again, in either spelling, counts once where it first comes", () => {
  const sortOf = (sort: string) => parseListQuery({ sort }, spec).sort;
  assert.deepEqual(sortOf("code,-code"), [{ column: "code", desc: false }]);
  assert.deepEqual(sortOf("-tickets_number,value,tickets-number"), [
    { column: "tickets_number", desc: true },
    { column: "value", desc: false },
  ]);
  // Each key is still checked: an unknown one after a repeat is refused.
  assertBadParameter(() => parseListQuery({ sort: "code,code,secret" }, spec), "sort");
});

Deno.test("[query] a fieldset's names in underscores are read dashed, as the original took them", () => {
  // flask-rest-jsonapi checked each name of a fieldset against its schema's Python names
  // (`valid_from`), so its clients wrote them so; `valid-from` is the JSON:API name.
  const withDashes: QuerySpec = { ...spec, sparse: { "discount-code": ["code", "valid-from"] } };
  const fields = (value: string) =>
    parseListQuery({ "fields[discount-code]": value }, withDashes).fields;
  assert.deepEqual(fields("code,valid_from"), { "discount-code": ["code", "valid-from"] });
  assert.deepEqual(fields("valid-from"), { "discount-code": ["valid-from"] });
  assertBadParameter(() => fields("code,valid_till"), "fields[discount-code]", /valid_till/);
});

Deno.test("[query] include paths in underscores are read dashed, as the original took them", () => {
  // flask-rest-jsonapi turned a path's dashes into underscores before looking it up among its
  // schemas' Python names, so either spelling reached the same relationship.
  const withPaths: QuerySpec = { ...spec, includes: ["event-topic", "tickets", "tickets.event"] };
  const include = (value: string) => parseListQuery({ include: value }, withPaths).include;
  assert.deepEqual(include("event_topic"), ["event-topic"]);
  assert.deepEqual(include("event_topic,event-topic, tickets.event"), [
    "event-topic",
    "tickets.event",
  ]);
  assertBadParameter(() => include("event_topic,sub_topic"), "include", /"sub_topic"/);
});
