import assert from "node:assert/strict";
import { z } from "zod";
import { ApiError, BadRequestError, ConflictError, UnprocessableError } from "./errors.ts";
import {
  listDocument,
  metaDocument,
  parseResourceDocument,
  relationshipDocument,
  type ResourceDef,
  type ResourceObject,
  setIncludedLinkage,
  singleDocument,
  toResource,
  validateAttributes,
} from "./jsonapi.ts";

interface TicketRow {
  id: number;
  name: string;
  price: number;
  created_at: Date;
  event_id: number | null;
  code_ids?: number[];
}

const ticket: ResourceDef<TicketRow> = {
  type: "ticket",
  collection: "tickets",
  attributes: {
    name: "name",
    price: "price",
    "created-at": "created_at",
    "is-free": (row) => row.price === 0,
  },
  relationships: {
    event: { type: "event", key: "event_id" },
    "discount-codes": { type: "discount-code", many: true, key: "code_ids" },
    attendees: { type: "attendee", many: true },
  },
};

const row: TicketRow = {
  id: 7,
  name: "Early bird",
  price: 0,
  created_at: new Date("2024-05-01T10:00:00Z"),
  event_id: 3,
};

Deno.test("[jsonapi] toResource maps attributes, dates, getters and the self link", () => {
  const resource = toResource(ticket, row);
  assert.equal(resource.id, "7");
  assert.equal(resource.type, "ticket");
  assert.deepEqual(resource.attributes, {
    name: "Early bird",
    price: 0,
    "created-at": "2024-05-01T10:00:00.000Z",
    "is-free": true,
  });
  assert.deepEqual(resource.links, { self: "/v1/tickets/7" });
});

Deno.test("[jsonapi] toResource writes each date exactly, however often it is seen", () => {
  const def = { type: "x", collection: "xs", attributes: { at: "at" } };
  const dates = [
    "2024-05-01T10:00:00.000Z",
    "0042-01-02T03:04:05.006Z",
    "+012345-06-07T00:00:00.000Z",
  ];
  for (let round = 0; round < 2; round++) {
    for (const text of dates) {
      assert.equal(toResource(def, { id: 1, at: new Date(text) }).attributes.at, text);
    }
  }
  assert.throws(() => toResource(def, { id: 1, at: new Date("nonsense") }), RangeError);
});

Deno.test("[jsonapi] toResource gives every relationship links and to-one keys data", () => {
  const rels = toResource(ticket, row).relationships as Record<string, Record<string, unknown>>;
  assert.deepEqual(rels.event, {
    links: { self: "/v1/tickets/7/relationships/event", related: "/v1/tickets/7/event" },
    data: { type: "event", id: "3" },
  });
  assert.deepEqual(rels["discount-codes"], {
    links: {
      self: "/v1/tickets/7/relationships/discount-codes",
      related: "/v1/tickets/7/discount-codes",
    },
  });
  assert.equal("data" in rels.attendees, false);
  const none = toResource(ticket, { ...row, event_id: null }).relationships as Record<
    string,
    Record<string, unknown>
  >;
  assert.equal(none.event.data, null);
  const many = toResource(ticket, { ...row, code_ids: [1, 2] }).relationships as Record<
    string,
    Record<string, unknown>
  >;
  assert.deepEqual(many["discount-codes"].data, [
    { type: "discount-code", id: "1" },
    { type: "discount-code", id: "2" },
  ]);
});

Deno.test("[jsonapi] toResource keeps only the sparse fieldset", () => {
  const resource = toResource(ticket, row, { fields: ["name", "event"] });
  assert.deepEqual(resource.attributes, { name: "Early bird" });
  assert.deepEqual(Object.keys(resource.relationships ?? {}), ["event"]);
  const bare = toResource(ticket, row, { fields: [] });
  assert.deepEqual(bare.attributes, {});
  assert.deepEqual(bare.relationships, {});
});

Deno.test("[jsonapi] setIncludedLinkage gives a relationship the linkage an include loaded", () => {
  const linked = { ...row };
  setIncludedLinkage(linked, "attendees", ["11", "12"]);
  setIncludedLinkage(linked, "event", ["3"]);
  const resource = toResource(ticket, linked);
  const relationships = resource.relationships as Record<string, { data?: unknown }>;
  assert.deepEqual(relationships.attendees.data, [
    { type: "attendee", id: "11" },
    { type: "attendee", id: "12" },
  ]);
  assert.deepEqual(relationships.event.data, { type: "event", id: "3" });
  assert.deepEqual(Object.keys(linked), Object.keys(row), "no visible field is added");
  assert.equal(JSON.stringify(linked), JSON.stringify(row));
  const none = { ...row };
  setIncludedLinkage(none, "attendees", []);
  const empty = toResource(ticket, none).relationships as Record<string, { data?: unknown }>;
  assert.deepEqual(empty.attendees.data, [], "an include that found nothing links to nothing");
});

const event: ResourceObject = {
  type: "event",
  id: "3",
  attributes: { name: "Conf", "starts-at": "2024-06-01T00:00:00.000Z" },
  links: { self: "/v1/events/3" },
};

Deno.test("[jsonapi] singleDocument has data, links.self, jsonapi and de-duplicated included", () => {
  const doc = singleDocument(ticket, row, {
    self: "/v1/tickets/7?include=event",
    included: [event, { ...event }, { ...event, type: "user" }],
    fields: { event: ["name"], ticket: ["price"] },
  }) as Record<string, unknown>;
  assert.deepEqual(doc.jsonapi, { version: "1.0" });
  assert.deepEqual(doc.links, { self: "/v1/tickets/7?include=event" });
  assert.deepEqual((doc.data as ResourceObject).attributes, { price: 0 });
  const included = doc.included as ResourceObject[];
  assert.equal(included.length, 2);
  assert.deepEqual(included[0].attributes, { name: "Conf" });
  assert.equal(included[1].type, "user");
  const plain = singleDocument(ticket, row, { self: "/v1/tickets/7" }) as Record<string, unknown>;
  assert.equal("included" in plain, false);
});

Deno.test("[jsonapi] listDocument builds paging links", async (t) => {
  const path = "/v1/tickets";
  const query = {
    filter: '[{"name":"name","op":"eq","val":"a b"}]',
    sort: "-name",
    "page[size]": "10",
    "page[number]": "2",
    include: "event",
  };
  // Written out: the query in its order, form-encoded (a space as +), only page[number] changed.
  const filter =
    "filter=%5B%7B%22name%22%3A%22name%22%2C%22op%22%3A%22eq%22%2C%22val%22%3A%22a+b%22%7D%5D";
  const pages: Record<number, string> = {
    1: `/v1/tickets?${filter}&sort=-name&page%5Bsize%5D=10&page%5Bnumber%5D=1&include=event`,
    2: `/v1/tickets?${filter}&sort=-name&page%5Bsize%5D=10&page%5Bnumber%5D=2&include=event`,
    3: `/v1/tickets?${filter}&sort=-name&page%5Bsize%5D=10&page%5Bnumber%5D=3&include=event`,
  };
  const expected = (n: number) => pages[n];
  const list = (number: number, count = 25, size = 10) =>
    listDocument(ticket, [row], {
      path,
      query: { ...query, "page[number]": String(number) },
      count,
      page: { size, number },
    }) as { links: Record<string, string>; meta: unknown; jsonapi: unknown; data: unknown[] };

  await t.step("middle page has prev and next, keeping the other parameters", () => {
    const doc = list(2);
    assert.equal(doc.links.self, expected(2));
    assert.equal(doc.links.first, expected(1));
    assert.equal(doc.links.last, expected(3));
    assert.equal(doc.links.prev, expected(1));
    assert.equal(doc.links.next, expected(3));
    assert.match(doc.links.next, /filter=%5B%7B%22name%22/);
    assert.match(doc.links.next, /sort=-name/);
    assert.deepEqual(doc.meta, { count: 25 });
    assert.deepEqual(doc.jsonapi, { version: "1.0" });
    assert.equal(doc.data.length, 1);
  });
  await t.step("first page has no prev", () => {
    const doc = list(1);
    assert.equal(doc.links.prev, undefined);
    assert.equal(doc.links.next, expected(2));
  });
  await t.step("last page has no next", () => {
    const doc = list(3);
    assert.equal(doc.links.next, undefined);
    assert.equal(doc.links.prev, expected(2));
  });
  await t.step("an empty list has first = last = page 1", () => {
    const doc = list(1, 0);
    assert.equal(doc.links.last, expected(1));
    assert.equal(doc.links.next, undefined);
  });
  await t.step("page size 0 means one page: first = last = self", () => {
    const doc = listDocument(ticket, [row], {
      path,
      query: { "page[size]": "0" },
      count: 25,
      page: { size: 0, number: 1 },
    }) as { links: Record<string, string> };
    assert.deepEqual(doc.links, {
      self: "/v1/tickets?page%5Bsize%5D=0",
      first: "/v1/tickets?page%5Bsize%5D=0",
      last: "/v1/tickets?page%5Bsize%5D=0",
    });
  });
  await t.step("without a query, self is the bare path and page[number] is added", () => {
    const doc = listDocument(ticket, [], {
      path,
      query: {},
      count: 45,
      page: { size: 20, number: 1 },
    }) as { links: Record<string, string> };
    assert.equal(doc.links.self, "/v1/tickets");
    assert.equal(doc.links.last, "/v1/tickets?page%5Bnumber%5D=3");
  });
  await t.step("included resources are de-duplicated, also against the primary data", () => {
    const doc = listDocument(ticket, [row], {
      path,
      query: {},
      count: 1,
      page: { size: 20, number: 1 },
      included: [event, event, { ...event, type: "ticket", id: "7" }],
    }) as { included: ResourceObject[] };
    assert.deepEqual(doc.included.map((r) => `${r.type}/${r.id}`), ["event/3"]);
  });
});

Deno.test("[jsonapi] relationshipDocument and metaDocument", () => {
  assert.deepEqual(
    relationshipDocument({
      self: "/v1/tickets/7/relationships/event",
      related: "/v1/tickets/7/event",
      data: null,
    }),
    {
      data: null,
      links: { self: "/v1/tickets/7/relationships/event", related: "/v1/tickets/7/event" },
      jsonapi: { version: "1.0" },
    },
  );
  assert.deepEqual(metaDocument({ message: "Object successfully deleted" }), {
    meta: { message: "Object successfully deleted" },
    jsonapi: { version: "1.0" },
  });
  assert.deepEqual(metaDocument({ message: "x" }, { self: "/v1/tickets/7" }), {
    meta: { message: "x" },
    jsonapi: { version: "1.0" },
    links: { self: "/v1/tickets/7" },
  });
});

const rels = {
  event: { type: "event" },
  "discount-codes": { type: "discount-code", many: true },
};

Deno.test("[jsonapi] parseResourceDocument unwraps a valid body", () => {
  const parsed = parseResourceDocument({
    data: {
      type: "ticket",
      id: "client-made",
      attributes: { name: "VIP" },
      relationships: {
        event: { data: { type: "event", id: 3 } },
        "discount-codes": { data: [{ type: "discount-code", id: "9" }] },
      },
    },
  }, { type: "ticket", relationships: rels });
  assert.deepEqual(parsed, {
    attributes: { name: "VIP" },
    relationships: {
      event: { type: "event", id: "3" },
      "discount-codes": [{ type: "discount-code", id: "9" }],
    },
  });
  const patch = parseResourceDocument(
    { data: { type: "ticket", id: "7", relationships: { event: { data: null } } } },
    { type: "ticket", id: "7", relationships: rels },
  );
  assert.deepEqual(patch, { id: "7", attributes: {}, relationships: { event: null } });
  const numeric = parseResourceDocument({ data: { type: "ticket", id: 7 } }, {
    type: "ticket",
    id: "7",
  });
  assert.equal(numeric.id, "7");
});

Deno.test("[jsonapi] parseResourceDocument rejects bad bodies with status and pointer", async (t) => {
  const cases: [
    string,
    unknown,
    Partial<Parameters<typeof parseResourceDocument>[1]>,
    unknown,
    string,
  ][] = [
    ["a non-object body", "text", {}, BadRequestError, "/data"],
    ["a body without data", { meta: {} }, {}, BadRequestError, "/data"],
    ["an array as data", { data: [] }, {}, BadRequestError, "/data"],
    ["a missing type", { data: { attributes: {} } }, {}, BadRequestError, "/data/type"],
    ["a wrong type", { data: { type: "event" } }, {}, ConflictError, "/data/type"],
    [
      "a missing id on PATCH",
      { data: { type: "ticket" } },
      { id: "7" },
      BadRequestError,
      "/data/id",
    ],
    [
      "a different id on PATCH",
      { data: { type: "ticket", id: "8" } },
      { id: "7" },
      ConflictError,
      "/data/id",
    ],
    [
      "attributes that are not an object",
      { data: { type: "ticket", attributes: [1] } },
      {},
      BadRequestError,
      "/data/attributes",
    ],
    [
      "relationships that are not an object",
      { data: { type: "ticket", relationships: 1 } },
      {},
      BadRequestError,
      "/data/relationships",
    ],
    [
      "a relationship not allowed",
      { data: { type: "ticket", relationships: { owner: { data: null } } } },
      {},
      UnprocessableError,
      "/data/relationships/owner",
    ],
    [
      "a relationship without data",
      { data: { type: "ticket", relationships: { event: { id: "3" } } } },
      {},
      BadRequestError,
      "/data/relationships/event",
    ],
    [
      "relationship data without an id",
      { data: { type: "ticket", relationships: { event: { data: { type: "event" } } } } },
      {},
      BadRequestError,
      "/data/relationships/event/data",
    ],
    [
      "relationship data with an object id",
      { data: { type: "ticket", relationships: { event: { data: { type: "event", id: {} } } } } },
      {},
      BadRequestError,
      "/data/relationships/event/data",
    ],
    [
      "an array for a to-one",
      { data: { type: "ticket", relationships: { event: { data: [] } } } },
      {},
      BadRequestError,
      "/data/relationships/event/data",
    ],
    [
      "null for a to-many",
      { data: { type: "ticket", relationships: { "discount-codes": { data: null } } } },
      {},
      BadRequestError,
      "/data/relationships/discount-codes/data",
    ],
    [
      "a wrong relationship type",
      { data: { type: "ticket", relationships: { event: { data: { type: "user", id: "1" } } } } },
      {},
      ConflictError,
      "/data/relationships/event/data/type",
    ],
    [
      "a wrong type inside a to-many",
      {
        data: {
          type: "ticket",
          relationships: {
            "discount-codes": {
              data: [{ type: "discount-code", id: "1" }, { type: "event", id: "2" }],
            },
          },
        },
      },
      {},
      ConflictError,
      "/data/relationships/discount-codes/data/1/type",
    ],
  ];
  for (const [name, body, extra, ErrorClass, pointer] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => parseResourceDocument(body, { type: "ticket", relationships: rels, ...extra }),
        (error: unknown) => {
          assert.ok(error instanceof (ErrorClass as typeof ApiError), String(error));
          assert.equal((error as ApiError).source?.pointer, pointer);
          assert.match((error as ApiError).message, /^Cannot /);
          return true;
        },
      );
    });
  }
});

Deno.test("[jsonapi] a type or id of the wrong kind is told apart from a missing one", () => {
  const detailOf = (body: unknown, id?: string) => {
    try {
      parseResourceDocument(body, { type: "ticket", id });
    } catch (error) {
      return (error as ApiError).message;
    }
    throw new Error("not refused");
  };
  assert.equal(detailOf({ data: {} }), "Cannot read body: data.type is missing");
  for (const type of [1, null, true, ["ticket"]]) {
    assert.equal(detailOf({ data: { type } }), "Cannot read body: data.type must be a string");
  }
  assert.equal(detailOf({ data: { type: "ticket" } }, "7"), "Cannot read body: data.id is missing");
  for (const id of [null, true, {}]) {
    assert.equal(
      detailOf({ data: { type: "ticket", id } }, "7"),
      "Cannot read body: data.id must be a string",
    );
  }
});

Deno.test("[jsonapi] parseResourceDocument skips relationships sent with links and no data", () => {
  // What a read shows (links only on every to-many and on what was not included) is sent back
  // by clients that save a resource as they read it; the original's marshmallow-jsonapi skipped
  // such relationships, allowed or not.
  const links = { self: "/v1/tickets/7/relationships/x", related: "/v1/tickets/7/x" };
  const parsed = parseResourceDocument({
    data: {
      type: "ticket",
      id: "7",
      relationships: {
        event: { links },
        "discount-codes": { links, data: [{ type: "discount-code", id: "1" }] },
        owner: { links, meta: {} },
      },
    },
  }, { type: "ticket", id: "7", relationships: rels });
  assert.deepEqual(parsed.relationships, {
    "discount-codes": [{ type: "discount-code", id: "1" }],
  });
  // Neither data nor links: still a 400.
  assert.throws(
    () =>
      parseResourceDocument(
        { data: { type: "ticket", relationships: { event: { meta: {} } } } },
        { type: "ticket", relationships: rels },
      ),
    BadRequestError,
  );
});

const schema = z.object({
  code: z.string().min(1),
  value: z.number().min(0),
  type: z.enum(["amount", "percent"]),
  "discount-url": z.url().optional(),
  "tickets-number": z.int().min(0).nullable().optional(),
  window: z.object({ from: z.iso.datetime() }).optional(),
}).refine((v) => v.type !== "percent" || v.value <= 100, {
  message: "Cannot save: a percent discount must be at most 100",
  path: ["value"],
});

Deno.test("[jsonapi] validateAttributes returns the parsed value and strips unknown keys", () => {
  const ok = validateAttributes(schema, { code: "X", value: 5, type: "amount", "used-count": 3 });
  assert.deepEqual(ok, { code: "X", value: 5, type: "amount" });
});

Deno.test("[jsonapi] validateAttributes throws one 422 pointing at every bad attribute", () => {
  assert.throws(
    () =>
      validateAttributes(schema, {
        value: -1,
        type: "gift",
        "discount-url": "not a url",
        "tickets-number": 1.5,
        window: { from: "yesterday" },
      }),
    (error: unknown) => {
      assert.ok(error instanceof UnprocessableError);
      const objects = error.toObjects();
      assert.deepEqual(objects.map((o) => o.source?.pointer), [
        "/data/attributes/code",
        "/data/attributes/value",
        "/data/attributes/type",
        "/data/attributes/discount-url",
        "/data/attributes/tickets-number",
        "/data/attributes/window/from",
      ]);
      assert.deepEqual(objects.map((o) => o.detail), [
        "Cannot save: code is required",
        "Cannot save: value must be at least 0",
        'Cannot save: type must be one of "amount", "percent"',
        "Cannot save: discount-url must be a valid URL",
        "Cannot save: tickets-number must be an integer",
        "Cannot save: window.from must be a date-time in ISO 8601 format with a time zone",
      ]);
      for (const o of objects) {
        assert.equal(o.status, "422");
        assert.equal(o.code, "unprocessable_entity");
        assert.equal(o.title, "Unprocessable entity");
      }
      return true;
    },
  );
});

Deno.test("[jsonapi] validateAttributes keeps the schema's own messages", () => {
  assert.throws(
    () => validateAttributes(schema, { code: "X", value: 150, type: "percent" }),
    (error: unknown) => {
      assert.ok(error instanceof UnprocessableError);
      assert.equal(error.message, "Cannot save: a percent discount must be at most 100");
      assert.equal(error.source?.pointer, "/data/attributes/value");
      assert.deepEqual(error.more, []);
      return true;
    },
  );
});

Deno.test("[jsonapi] validateAttributes names the attribute a schema's own fragment is about", () => {
  // Shared field schemas (text, money, dates, time zones) word their refusal as a fragment
  // ("must not be empty"): the detail must still say which attribute it is about.
  const fields = z.object({
    name: z.string().min(1, "must not be empty"),
    price: z.number().max(10, "must be at most 10"),
    tz: z.string().refine((v) => v === "UTC", "must be an IANA timezone name"),
  });
  assert.throws(
    () => validateAttributes(fields, { name: "", price: 11, tz: "Mars" }),
    (error: unknown) => {
      assert.ok(error instanceof UnprocessableError);
      assert.deepEqual(error.toObjects().map((o) => [o.detail, o.source?.pointer]), [
        ["Cannot save: name must not be empty", "/data/attributes/name"],
        ["Cannot save: price must be at most 10", "/data/attributes/price"],
        ["Cannot save: tz must be an IANA timezone name", "/data/attributes/tz"],
      ]);
      return true;
    },
  );
});

Deno.test("[jsonapi] validateAttributes words nulls, strings and wrong types readably", () => {
  const small = z.object({
    name: z.string().min(3).max(5),
    count: z.number().gt(0),
    when: z.string(),
  });
  assert.throws(
    () => validateAttributes(small, { name: "ab", count: 0, when: null }),
    (error: unknown) => {
      assert.ok(error instanceof UnprocessableError);
      assert.deepEqual(error.toObjects().map((o) => o.detail), [
        "Cannot save: name must be at least 3 characters long",
        "Cannot save: count must be greater than 0",
        "Cannot save: when must not be null",
      ]);
      return true;
    },
  );
  assert.throws(
    () => validateAttributes(small, { name: 1, count: "x", when: "now" }),
    (error: unknown) => {
      assert.ok(error instanceof UnprocessableError);
      assert.deepEqual(error.toObjects().map((o) => o.detail), [
        "Cannot save: name must be a string",
        "Cannot save: count must be a number",
      ]);
      return true;
    },
  );
});

Deno.test("[jsonapi] a placeholder relationship shows only where included, empty, without links", () => {
  const def: ResourceDef<Record<string, unknown>> = {
    type: "event",
    collection: "events",
    attributes: { name: "name" },
    relationships: {
      owner: { type: "user", key: "owner_id" },
      tax: { type: "tax", placeholder: true },
      sessions: { type: "session", many: true, placeholder: true },
    },
  };
  const plain = toResource(def, { id: 1, name: "E", owner_id: 2 });
  assert.deepEqual(Object.keys(plain.relationships!), ["owner"]);
  const row = { id: 1, name: "E", owner_id: 2 };
  setIncludedLinkage(row, "tax", []);
  setIncludedLinkage(row, "sessions", []);
  const included = toResource(def, row).relationships!;
  assert.deepEqual(included.tax, { data: null });
  assert.deepEqual(included.sessions, { data: [] });
  // Sent back in a body, it is read as a name the resource does not have: ignored, not a 422.
  const parsed = parseResourceDocument({
    data: { type: "event", attributes: {}, relationships: { tax: { data: null } } },
  }, { type: "event", relationships: {}, known: def.relationships });
  assert.deepEqual(parsed.relationships, {});
  assert.throws(
    () =>
      parseResourceDocument({
        data: { type: "event", attributes: {}, relationships: { owner: { data: null } } },
      }, { type: "event", relationships: {}, known: def.relationships }),
    UnprocessableError,
  );
});
