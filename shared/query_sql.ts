/**
 * Turns parsed filters, sorts and pages (from `@shared/query.ts`) into postgres.js fragments.
 * Columns come only from a route's whitelist and go through `sql(column)`; every value is bound.
 *
 * @example
 * ```ts
 * import { openDatabase } from "@shared/db.ts";
 * import { parseListQuery } from "@shared/query.ts";
 * import { orderSql, pageSql, whereSql } from "@shared/query_sql.ts";
 * const sql = await openDatabase("postgres://postgres@127.0.0.1:5432/open_event", {
 *   schema: "catalog",
 * });
 * const q = parseListQuery({ sort: "-name" }, {
 *   fields: { name: { column: "name", type: "string" } },
 * });
 * const rows = await sql`select * from event_topics where ${whereSql(sql, q.filter)}
 *   ${orderSql(sql, q.sort)} ${pageSql(sql, q.page)}`;
 * await sql.end();
 * ```
 */
import type postgres from "postgres";
import type { Queryable } from "./db.ts";
import type { AbsentRelated, FilterNode, RelatedFilter, SortKey } from "./query.ts";

export type Fragment = postgres.Fragment;

// What parseListQuery puts in a condition after coercion.
type Scalar = string | number | boolean | Date;

/** Shared fragments by pool (or transaction), by what they say. */
const shared = new WeakMap<Queryable, Map<string, unknown>>();
// Sorts and page numbers come from clients: what is kept stays bounded, the rest is made anew.
const keepAtMost = 1000;

/**
 * A fragment that says the same every time (`true`, an identifier, an order, a page), made once
 * per pool under `key` and then shared. postgres.js makes every fragment a promise-like query
 * object (about 2 µs each) and a list request made a dozen of them; a fragment only lends its
 * text and bound values to the queries it is part of, so sharing one is safe.
 *
 * @example
 * ```ts
 * import type { Queryable } from "@shared/db.ts";
 * import { fixedFragment } from "@shared/query_sql.ts";
 * declare const sql: Queryable;
 * const live = fixedFragment(sql, "live:events", () => sql`events.deleted_at is null`);
 * await sql`select id from events where ${live}`;
 * ```
 */
export function fixedFragment<T>(sql: Queryable, key: string, make: () => T): T {
  let kept = shared.get(sql);
  if (!kept) shared.set(sql, kept = new Map());
  let fragment = kept.get(key) as T | undefined;
  if (fragment === undefined) {
    fragment = make();
    if (kept.size < keepAtMost) kept.set(key, fragment);
  }
  return fragment;
}

function join(sql: Queryable, parts: Fragment[], separator: "and" | "or" | ","): Fragment {
  return parts.reduce((acc, part) =>
    separator === "and"
      ? sql`${acc} and ${part}`
      : separator === "or"
      ? sql`${acc} or ${part}`
      : sql`${acc}, ${part}`
  );
}

type Condition = Extract<FilterNode, { op: string }>;

/**
 * A caseless column's condition (`QueryField.caseless`) compares lowered text on both sides, as
 * Postgres's citext compares; lowered by Postgres, so that both sides fold case alike.
 */
function caselessSides(sql: Queryable, node: Condition): { column: Fragment; value: Fragment } {
  return { column: sql`lower(${sql(node.column)})`, value: sql`lower(${node.value as string})` };
}

function condition(sql: Queryable, node: Condition): Fragment {
  const { column, value } = node.caseless
    ? caselessSides(sql, node)
    : { column: sql(node.column), value: node.value as Scalar };
  switch (node.op) {
    case "eq":
      return node.value === null ? sql`${column} is null` : sql`${column} = ${value}`;
    case "ne":
      return node.value === null ? sql`${column} is not null` : sql`${column} <> ${value}`;
    case "lt":
      return sql`${column} < ${value}`;
    case "le":
      return sql`${column} <= ${value}`;
    case "gt":
      return sql`${column} > ${value}`;
    case "ge":
      return sql`${column} >= ${value}`;
    case "like":
      return sql`${column} like ${value}`;
    case "ilike":
      return sql`${column} ilike ${value}`;
    case "in_":
    case "notin_": {
      const values = node.value as Scalar[];
      // `in ()` is a syntax error: an empty list matches nothing (in_) or everything (notin_).
      if (values.length === 0) return node.op === "in_" ? sql`false` : sql`true`;
      const list = node.caseless
        ? sql`(${join(sql, values.map((v) => sql`lower(${v as string})`), ",")})`
        : sql(values);
      return node.op === "in_" ? sql`${column} in ${list}` : sql`${column} not in ${list}`;
    }
    case "is_":
      return sql`${column} is null`;
    case "isnot":
      return sql`${column} is not null`;
  }
}

/** What a filter's SQL depends on beyond the filter: whom the list is for. */
export interface WhereOptions {
  /** Whether the list shows trashed rows (an admin asked get_trashed): then related ones match. */
  withTrashed?: boolean;
}

/**
 * A filter through a relationship: whether a related row exists that is linked, live (unless the
 * list shows trashed rows) and matches. The inner filter names the related table's columns
 * unqualified, which resolve to it first; the link's columns come qualified from the declaration.
 * Through a relationship whose resources are not kept here, no row is related: `false`.
 */
function relatedSql(
  sql: Queryable,
  node: { related: RelatedFilter | AbsentRelated; filter: FilterNode },
  options: WhereOptions,
): Fragment {
  const { related } = node;
  if (related.table === null) return fixedFragment(sql, "false", () => sql`false`);
  const live = related.softDeleted && !options.withTrashed
    ? sql`${sql(`${related.table}.deleted_at`)} is null`
    : sql`true`;
  return sql`exists (select 1 from ${sql(related.table)}
    where ${sql(related.on.related)} = ${sql(related.on.parent)}
      and ${live} and ${whereSql(sql, node.filter, options)})`;
}

/**
 * A `where` condition for a parsed filter; `true` when there is none. A filter through a
 * relationship matches live related rows only, unless `options.withTrashed`.
 *
 * @example
 * ```ts
 * import type { Sql } from "@shared/db.ts";
 * import { whereSql } from "@shared/query_sql.ts";
 * declare const sql: Queryable;
 * await sql`select * from tickets where ${
 *   whereSql(sql, { column: "price", op: "ge", value: 10, type: "number" })
 * }`;
 * ```
 */
export function whereSql(
  sql: Queryable,
  filter: FilterNode | undefined,
  options: WhereOptions = {},
): Fragment {
  if (!filter) return fixedFragment(sql, "true", () => sql`true`);
  if ("and" in filter) {
    if (filter.and.length === 0) return fixedFragment(sql, "true", () => sql`true`);
    return sql`(${join(sql, filter.and.map((f) => whereSql(sql, f, options)), "and")})`;
  }
  if ("or" in filter) {
    // An empty `or` is no condition at all, as in the original: SQLAlchemy 1.3 compiles an
    // empty `or_()` to nothing. open-event-frontend's admin tables send `{"or":[]}` whenever
    // their search box is empty, and expect every row.
    if (filter.or.length === 0) return fixedFragment(sql, "true", () => sql`true`);
    return sql`(${join(sql, filter.or.map((f) => whereSql(sql, f, options)), "or")})`;
  }
  if ("not" in filter) return sql`not (${whereSql(sql, filter.not, options)})`;
  if ("related" in filter) return relatedSql(sql, filter, options);
  return condition(sql, filter);
}

/**
 * `order by` for the parsed sort, always ending with `tiebreak` (default "id") so pages are
 * stable.
 *
 * @example
 * ```ts
 * import type { Sql } from "@shared/db.ts";
 * import { orderSql } from "@shared/query_sql.ts";
 * declare const sql: Queryable;
 * await sql`select * from tickets ${orderSql(sql, [{ column: "price", desc: true }])}`;
 * // ... order by "price" desc, "id"
 * ```
 */
export function orderSql(sql: Queryable, sort: SortKey[], tiebreak = "id"): Fragment {
  const key = `order:${
    sort.map((k) => `${k.caseless ? "~" : ""}${k.column}${k.desc ? "-" : "+"}`).join(",")
  }:${tiebreak}`;
  return fixedFragment(sql, key, () => makeOrder(sql, sort, tiebreak));
}

function makeOrder(sql: Queryable, sort: SortKey[], tiebreak: string): Fragment {
  const keys = sort.map((key) => {
    const column = key.caseless ? sql`lower(${sql(key.column)})` : sql(key.column);
    return key.desc ? sql`${column} desc` : sql`${column} asc`;
  });
  if (!sort.some((key) => key.column === tiebreak)) keys.push(sql`${sql(tiebreak)} asc`);
  return sql`order by ${join(sql, keys, ",")}`;
}

/**
 * `limit`/`offset` for a page; empty when the size is 0 (no paging).
 *
 * @example
 * ```ts
 * import type { Sql } from "@shared/db.ts";
 * import { pageSql } from "@shared/query_sql.ts";
 * declare const sql: Queryable;
 * await sql`select * from tickets order by id ${pageSql(sql, { size: 20, number: 2 })}`;
 * ```
 */
export function pageSql(sql: Queryable, page: { size: number; number: number }): Fragment {
  return fixedFragment(
    sql,
    `page:${page.size}:${page.number}`,
    () => page.size === 0 ? sql`` : sql`limit ${page.size} offset ${(page.number - 1) * page.size}`,
  );
}
