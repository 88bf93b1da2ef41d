/** SQL pieces every catalog list shares: paging with a total, trash visibility, id checks. */
import type { Queryable, Row } from "@shared/db.ts";
import { isId } from "@shared/schemas/ids.ts";
import type { ListQuery } from "@shared/query.ts";
import {
  fixedFragment,
  type Fragment,
  orderSql,
  pageSql,
  type WhereOptions,
  whereSql,
} from "@shared/query_sql.ts";

export type { Row };
export type * from "./rows.ts";
export type { Fragment };

/**
 * Rows of one page and the total matching count, in one round trip for the common case.
 * `options.withTrashed`: the list shows trashed rows, so its relationship filters match them too.
 */
export async function listRows<R extends Row = Row>(
  sql: Queryable,
  table: string,
  scope: Fragment,
  query: ListQuery,
  options: WhereOptions = {},
): Promise<{ rows: R[]; count: number }> {
  const where = whereSql(sql, query.filter, options);
  const rows = await sql`
    select *, count(*) over () as total_count from ${tableSql(sql, table)}
    where ${scope} and ${where}
    ${orderSql(sql, query.sort)} ${pageSql(sql, query.page)}`;
  if (rows.length) {
    const count = Number(rows[0].total_count);
    return { rows: rows.map(({ total_count: _, ...row }) => row as R), count };
  }
  const [{ count }] = await sql`
    select count(*)::int as count from ${tableSql(sql, table)}
    where ${scope} and ${where}`;
  return { rows: [], count };
}

/** `deleted_at is null`, unless an admin asked for trashed rows too. */
export function liveRows(sql: Queryable, table: string, withTrashed: boolean): Fragment {
  return fixedFragment(
    sql,
    `live:${table}:${withTrashed}`,
    () => withTrashed ? sql`true` : sql`${sql(table)}.deleted_at is null`,
  );
}

/** `table.id` among `ids` (none: no row), or every row when `ids` is undefined. */
export function idsAmong(sql: Queryable, table: string, ids: string[] | undefined): Fragment {
  if (ids === undefined) return sql`true`;
  const valid = ids.filter(isId);
  return valid.length ? sql`${sql(table)}.id in ${sql(valid)}` : sql`false`;
}

function tableSql(sql: Queryable, table: string) {
  return fixedFragment(sql, `table:${table}`, () => sql(table));
}

/**
 * Soft-deletes a row (sets `deleted_at`) or, with `permanent`, removes it; returns the row as it
 * ended, so the fact of a deletion carries its last state.
 */
export async function deleteRow<R extends Row = Row>(
  tx: Queryable,
  table: string,
  id: string,
  permanent: boolean,
): Promise<R | undefined> {
  const [row] = permanent
    ? await tx`delete from ${tx(table)} where id = ${id} returning *`
    : await tx`update ${tx(table)} set deleted_at = now()
        where id = ${id} and deleted_at is null returning *`;
  return row as R | undefined;
}

/** The row `id` of `table`, locked until the transaction `tx` ends; undefined when there is none. */
export async function lockRow(tx: Queryable, table: string, id: string): Promise<Row | undefined> {
  const [row] = await tx<Row[]>`select * from ${tx(table)} where id = ${id} for update`;
  return row;
}
