import assert from "node:assert/strict";
import postgres from "postgres";
import type { Sql } from "./db.ts";
import { type FilterNode, parseListQuery, type QuerySpec } from "./query.ts";
import { fixedFragment, orderSql, pageSql, whereSql } from "./query_sql.ts";
import { testDatabase } from "./testing.ts";

const spec: QuerySpec = {
  fields: {
    code: { column: "code", type: "string" },
    "tickets-number": { column: "tickets_number", type: "integer" },
    value: { column: "value", type: "number" },
    "is-active": { column: "is_active", type: "boolean" },
    "valid-from": { column: "valid_from", type: "datetime" },
  },
};

// id, code, tickets_number, value, is_active, valid_from
const rows: [number, string, number | null, number, boolean, string | null][] = [
  [1, "SUMMER", 10, 5.5, true, "2024-06-01T00:00:00Z"],
  [2, "summer-kids", null, 2, true, "2024-06-15T00:00:00Z"],
  [3, "WINTER", 5, 10, false, "2024-12-01T00:00:00Z"],
  [4, "SPRING", 10, 0, true, null],
  [5, "'; drop table codes; --", 1, 1, false, "2025-01-01T00:00:00Z"],
];

async function withTable(fn: (sql: Sql) => Promise<void>) {
  await using db = await testDatabase();
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  try {
    await sql`create table codes (
      id integer primary key, code text not null, tickets_number integer,
      value numeric not null, is_active boolean not null, valid_from timestamptz)`;
    for (const [id, code, tickets_number, value, is_active, valid_from] of rows) {
      await sql`insert into codes ${
        sql({ id, code, tickets_number, value, is_active, valid_from })
      }`;
    }
    await fn(sql);
  } finally {
    await sql.end();
  }
}

async function ids(sql: Sql, filter: FilterNode | undefined): Promise<number[]> {
  const found = await sql`select id from codes where ${whereSql(sql, filter)} order by id`;
  return found.map((r) => r.id);
}

async function listIds(sql: Sql, query: Record<string, string>): Promise<number[]> {
  const q = parseListQuery(query, spec);
  const found = await sql`select id from codes where ${whereSql(sql, q.filter)}
    ${orderSql(sql, q.sort)} ${pageSql(sql, q.page)}`;
  return found.map((r) => r.id);
}

function f(...conditions: unknown[]): Record<string, string> {
  return { filter: JSON.stringify(conditions) };
}

Deno.test("[query_sql] whereSql selects the right rows for every op", async (t) => {
  await withTable(async (sql) => {
    const cases: [string, Record<string, string>, number[]][] = [
      ["no filter", {}, [1, 2, 3, 4, 5]],
      ["eq", f({ name: "code", op: "eq", val: "WINTER" }), [3]],
      ["eq null is IS NULL", f({ name: "tickets-number", op: "eq", val: null }), [2]],
      ["ne", f({ name: "tickets-number", op: "ne", val: "10" }), [3, 5]],
      ["ne null is IS NOT NULL", f({ name: "valid-from", op: "ne", val: null }), [1, 2, 3, 5]],
      ["lt", f({ name: "value", op: "lt", val: 2 }), [4, 5]],
      ["le", f({ name: "value", op: "le", val: "2" }), [2, 4, 5]],
      ["gt", f({ name: "value", op: "gt", val: 5.5 }), [3]],
      ["ge", f({ name: "valid-from", op: "ge", val: "2024-06-15T00:00:00Z" }), [2, 3, 5]],
      ["like is case-sensitive", f({ name: "code", op: "like", val: "SUM%" }), [1]],
      ["ilike", f({ name: "code", op: "ilike", val: "sum%" }), [1, 2]],
      ["in_", f({ name: "tickets-number", op: "in_", val: [5, "1"] }), [3, 5]],
      ["empty in_", f({ name: "code", op: "in_", val: [] }), []],
      ["notin_", f({ name: "code", op: "notin_", val: ["SUMMER", "WINTER"] }), [2, 4, 5]],
      ["empty notin_", f({ name: "code", op: "notin_", val: [] }), [1, 2, 3, 4, 5]],
      ["is_", f({ name: "valid-from", op: "is_", val: null }), [4]],
      ["isnot", f({ name: "tickets-number", op: "isnot", val: null }), [1, 3, 4, 5]],
      ["boolean", f({ name: "is-active", op: "eq", val: "false" }), [3, 5]],
      ["datetime in_", f({ name: "valid-from", op: "in_", val: ["2024-06-01T00:00:00Z"] }), [1]],
      [
        "and (array)",
        f({ name: "is-active", op: "eq", val: true }, { name: "value", op: "gt", val: 1 }),
        [1, 2],
      ],
      [
        "nested or / and / not",
        {
          filter: JSON.stringify({
            or: [
              { name: "code", op: "eq", val: "WINTER" },
              {
                and: [
                  { name: "is-active", op: "eq", val: true },
                  { not: { name: "code", op: "ilike", val: "summer%" } },
                ],
              },
            ],
          }),
        },
        [3, 4],
      ],
      // As the original's SQLAlchemy 1.3 read it: open-event-frontend's admin tables send an
      // empty `or` whenever their search box is empty.
      ["empty or is no condition", { filter: '[{"or":[]}]' }, [1, 2, 3, 4, 5]],
      ["empty or beside a condition", f({ or: [] }, { name: "code", op: "eq", val: "WINTER" }), [
        3,
      ]],
      ["empty and matches everything", { filter: '{"and":[]}' }, [1, 2, 3, 4, 5]],
    ];
    for (const [name, query, expected] of cases) {
      await t.step(name, async () => {
        assert.deepEqual(await ids(sql, parseListQuery(query, spec).filter), expected);
      });
    }
  });
});

Deno.test("[query_sql] whereSql binds SQL-looking values harmlessly", async () => {
  await withTable(async (sql) => {
    const evil = "'; drop table codes; --";
    assert.deepEqual(await listIds(sql, f({ name: "code", op: "eq", val: evil })), [5]);
    assert.deepEqual(await listIds(sql, f({ name: "code", op: "like", val: "%' or 1=1 --" })), []);
    assert.deepEqual(
      await listIds(sql, f({ name: "code", op: "in_", val: [evil, "x') or ('1"] })),
      [
        5,
      ],
    );
    // A column name that slipped past a whitelist would still be quoted as one identifier.
    await assert.rejects(
      () => ids(sql, { column: "code; drop table codes", op: "eq", value: "x", type: "string" }),
      (error: unknown) => (error as { code?: string }).code === "42703",
    );
    const [{ count }] = await sql`select count(*)::int as count from codes`;
    assert.equal(count, 5);
  });
});

Deno.test("[query_sql] orderSql sorts with a stable tiebreak", async () => {
  await withTable(async (sql) => {
    assert.deepEqual(await listIds(sql, { sort: "-tickets-number" }), [2, 1, 4, 3, 5]);
    assert.deepEqual(await listIds(sql, { sort: "tickets-number,-value" }), [5, 3, 1, 4, 2]);
    assert.deepEqual(await listIds(sql, { sort: "is-active" }), [3, 5, 1, 2, 4]);
    assert.deepEqual(await listIds(sql, {}), [1, 2, 3, 4, 5]);
    const found = await sql`select id from codes ${
      orderSql(sql, [{ column: "is_active", desc: false }], "code")
    }`;
    assert.deepEqual(found.map((r) => r.id), [5, 3, 4, 1, 2]);
    const byId = await sql`select id from codes ${orderSql(sql, [{ column: "id", desc: true }])}`;
    assert.deepEqual(byId.map((r) => r.id), [5, 4, 3, 2, 1]);
  });
});

Deno.test("[query_sql] a caseless field filters and sorts as citext does, whatever the case", async () => {
  // The original's discount codes were citext: its filters and sorts on `code` ignored case.
  const caseless: QuerySpec = {
    fields: { ...spec.fields, code: { column: "code", type: "string", caseless: true } },
  };
  const found = async (sql: Sql, query: Record<string, string>) => {
    const q = parseListQuery(query, caseless);
    const rows = await sql`select id from codes where ${whereSql(sql, q.filter)}
      ${orderSql(sql, q.sort)}`;
    return rows.map((r) => r.id);
  };
  const code = (op: string, val: unknown) => f({ name: "code", op, val });
  await withTable(async (sql) => {
    // A plain sort of the same column first: its shared fragment must not answer for the
    // caseless one below (their keys differ).
    assert.equal((await listIds(sql, { sort: "code" })).length, rows.length);
    assert.deepEqual(await found(sql, code("eq", "summer")), [1]);
    assert.deepEqual(await found(sql, code("ne", "Summer")), [2, 3, 4, 5]);
    assert.deepEqual(await found(sql, code("like", "sum%")), [1, 2]);
    assert.deepEqual(await found(sql, code("startswith", "SUMMER-")), [2]);
    assert.deepEqual(await found(sql, code("in_", ["winter", "Spring"])), [3, 4]);
    assert.deepEqual(await found(sql, code("notin_", ["winter", "SUMMER"])), [2, 4, 5]);
    assert.deepEqual(await found(sql, code("gt", "spring")), [1, 2, 3]);
    assert.deepEqual(await found(sql, code("eq", null)), []);
    // Byte order (the test database's C collation) would put every capital first: 5, 4, 1, 3, 2.
    assert.deepEqual(await found(sql, { sort: "code" }), [5, 4, 1, 2, 3]);
    assert.deepEqual(await found(sql, { sort: "-code" }), [3, 2, 1, 4, 5]);
  });
});

// Found by a hostile-input hunt: each key nested the ORDER BY one level deeper, and a 15 KB
// `sort=id,id,...` overflowed the stack building it: a 500 on every list, for anyone.
Deno.test("[query_sql] a sort naming its keys thousands of times orders by each once", async () => {
  await withTable(async (sql) => {
    const many = (key: string) => Array(5000).fill(key).join(",");
    assert.deepEqual(await listIds(sql, { sort: many("value") }), [4, 5, 2, 1, 3]);
    assert.deepEqual(
      await listIds(sql, { sort: `${many("tickets-number")},-value,${many("value")}` }),
      [5, 3, 1, 4, 2],
      "as tickets-number,-value: a later mention of a key changes nothing",
    );
  });
});

Deno.test("[query_sql] pageSql pages with limit/offset and size 0 returns all", async () => {
  await withTable(async (sql) => {
    assert.deepEqual(await listIds(sql, { "page[size]": "2" }), [1, 2]);
    assert.deepEqual(await listIds(sql, { "page[size]": "2", "page[number]": "2" }), [3, 4]);
    assert.deepEqual(await listIds(sql, { "page[size]": "2", "page[number]": "3" }), [5]);
    assert.deepEqual(await listIds(sql, { "page[size]": "2", "page[number]": "4" }), []);
    assert.deepEqual(await listIds(sql, { "page[size]": "0", "page[number]": "3" }), [
      1,
      2,
      3,
      4,
      5,
    ]);
    assert.deepEqual(
      await listIds(sql, { "page[size]": "1", "page[number]": "2", sort: "-value", ...f() }),
      [1],
    );
  });
});

Deno.test("[query_sql] shared fragments are made once per pool and key and stay correct", async () => {
  await withTable(async (sql) => {
    // The same order, page and "no filter" twice: the second list reuses the first's fragments.
    const query = { sort: "-value", "page[size]": "2", "page[number]": "2" };
    assert.deepEqual(await listIds(sql, query), [2, 5]);
    assert.deepEqual(await listIds(sql, query), [2, 5]);
    const sort = [{ column: "value", desc: true }];
    assert.equal(orderSql(sql, sort), orderSql(sql, sort));
    assert.notEqual(orderSql(sql, sort), orderSql(sql, [{ column: "value", desc: false }]));
    assert.notEqual(pageSql(sql, { size: 2, number: 1 }), pageSql(sql, { size: 2, number: 2 }));
    assert.equal(whereSql(sql, undefined), whereSql(sql, { and: [] }));
    // Two pools never share: a fragment belongs to the pool that made it.
    await using db = await testDatabase();
    const other = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      assert.notEqual(orderSql(other, sort), orderSql(sql, sort));
    } finally {
      await other.end();
    }
    let made = 0;
    const make = () => (made++, sql`id > ${3}`);
    for (let i = 0; i < 3; i++) fixedFragment(sql, "test:over-3", make);
    assert.equal(made, 1);
    const found = await sql`select id from codes where ${fixedFragment(sql, "test:over-3", make)}`;
    assert.deepEqual(found.map((r) => r.id).sort(), [4, 5]);
  });
});
