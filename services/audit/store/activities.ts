/** All SQL about activities: the idempotent batch insert and the admin reads. */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { isId } from "@shared/schemas/ids.ts";
import type { Queryable, Row } from "@shared/db.ts";
import type { ListQuery } from "@shared/query.ts";
import { orderSql, pageSql, whereSql } from "@shared/query_sql.ts";

export type { Row };

/** One activity as the consumer writes it. */
export interface NewActivity {
  fact_id: string;
  actor: string;
  actor_id: string | null;
  occurred_at: string;
  action: string;
  service: string;
  type: string;
  verb: string;
  resource_type: string;
  resource_id: string;
}

/** The columns of an activity, in insert order (also used by the Dredd fixtures). */
export const ACTIVITY_COLUMNS = [
  "fact_id",
  "actor",
  "actor_id",
  "occurred_at",
  "action",
  "service",
  "type",
  "verb",
  "resource_type",
  "resource_id",
] as const;

/**
 * Writes a batch in one statement; facts already written (a redelivery) are skipped, so the
 * same batch may come any number of times. Returns how many rows were new.
 */
export async function insertActivities(sql: Queryable, rows: NewActivity[]): Promise<number> {
  if (!rows.length) return 0;
  // In fact id order, one for every writer: each row waits for another batch's uncommitted row
  // of the same fact, and two batches with common facts in other orders (a fact re-published
  // under another message id lands in both) deadlocked, one of them aborted (lock_order_test.ts).
  // Their ids still follow the batch's order: the log lists activities of one millisecond (the
  // facts of one change) by id.
  const ids = await batchIds(sql, rows.length);
  const numbered = rows.map((row, i) => ({ ...row, id: ids[i], fact_id: factKey(row.fact_id) }));
  const sorted = numbered.toSorted((a, b) => a.fact_id < b.fact_id ? -1 : 1);
  const result = await sql`insert into activities ${sql(sorted, "id", ...ACTIVITY_COLUMNS)}
    on conflict (fact_id) do nothing`;
  return result.count;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const bytesOf = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));

/** RFC 9562's namespace for URLs, the one name-based keys of fact ids are made in. */
const NAMESPACE = bytesOf("6ba7b8119dad11d180b400c04fd430c8");

/**
 * A namespace of our own for ids that are not well-formed Unicode (a lone surrogate, sent as
 * `\ud800` in JSON): UTF-8 makes every one U+FFFD, so such ids are hashed as UTF-16 code units,
 * apart from the rest.
 */
const MALFORMED_NAMESPACE = bytesOf("4f45a7b1c2d34e5f8a6b7c8d9e0f1a2b");

/**
 * What a fact's activity is keyed by (`fact_id`, a uuid column, unique: a redelivered fact is
 * skipped). Our producers' fact ids are UUIDs, kept as they are; the envelope takes any text, as
 * CloudEvents does, so another id is keyed by the name-based UUID (version 5) of it: always the
 * same one for the same id, where the column refused it and the fact was parked without an
 * activity (a review).
 */
export function factKey(factId: string): string {
  if (UUID.test(factId)) return factId;
  const hash = factId.isWellFormed()
    ? createHash("sha1").update(NAMESPACE).update(factId).digest()
    : createHash("sha1").update(MALFORMED_NAMESPACE).update(Buffer.from(factId, "utf16le"))
      .digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
    .join("-");
}

/** `count` new activity ids, ascending (those of facts written already are never used). */
async function batchIds(sql: Queryable, count: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select nextval(pg_get_serial_sequence('activities', 'id'))::text as id
    from generate_series(1, ${count})`;
  return rows.map((row) => BigInt(row.id)).sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
    .map(String);
}

export async function getActivity(sql: Queryable, id: string): Promise<Row | undefined> {
  if (!isId(id)) return undefined;
  const [row] = await sql`select * from activities where id = ${id}`;
  return row;
}

/**
 * Every matching activity for an unpaged list (`page[size]=0`), but never more than `limit`
 * rows: the log grows for good, and one such read of it all held hundreds of megabytes.
 */
export async function listActivitiesUpTo(
  sql: Queryable,
  query: ListQuery,
  limit: number,
): Promise<Row[]> {
  return await sql`select * from activities
    where ${whereSql(sql, query.filter)} ${orderSql(sql, query.sort)} limit ${limit}`;
}

/**
 * One page of the log and the total matching count, as two statements: a window count over the
 * page made every page read, sort and hold the whole log (1,000,000 activities: 1.0–1.5 s a page,
 * where the page alone takes a millisecond and the count 0.2 s).
 */
export async function listActivities(
  sql: Queryable,
  query: ListQuery,
): Promise<{ rows: Row[]; count: number }> {
  const where = whereSql(sql, query.filter);
  const [rows, [{ count }]] = await Promise.all([
    sql`select * from activities
      where ${where} ${orderSql(sql, query.sort)} ${pageSql(sql, query.page)}`,
    sql`select count(*) as count from activities where ${where}`,
  ]);
  return { rows, count: Number(count) };
}
