/** All SQL about discount codes and what they are attached to. */
import { isId } from "@shared/schemas/ids.ts";
import { type Queryable, translateDbError } from "@shared/db.ts";
import { ConflictError } from "@shared/errors.ts";
import type { ListQuery } from "@shared/query.ts";
import { type Fragment, orderSql, pageSql, whereSql } from "@shared/query_sql.ts";

export type { Fragment };

export type CodeKind = "event" | "ticket";
export type DiscountType = "amount" | "percent";

/**
 * A code as the `code_rows` view shows it: the stored columns and the ids it is attached to.
 * Bigint ids and the exact `numeric` value arrive as strings (postgres.js).
 */
export type CodeRow = {
  id: string;
  code: string;
  discount_url: string | null;
  /** numeric(12, 2), e.g. "12.50". */
  value: string;
  type: DiscountType;
  is_active: boolean;
  tickets_number: number | null;
  min_quantity: number;
  max_quantity: number;
  valid_from: Date | null;
  valid_till: Date | null;
  used_for: CodeKind;
  /** The event of a ticket code; null for event codes. */
  event_id: string | null;
  marketer_id: string | null;
  used_count: number;
  created_at: Date;
  deleted_at: Date | null;
  /** Attached tickets (ticket codes), ascending. */
  ticket_ids: string[];
  /** Events an event code is applied to, ascending. */
  event_ids: string[];
};

/** The columns a create or update writes (snake_case, as stored). */
export interface CodeValues {
  code?: string;
  discount_url?: string | null;
  value?: string;
  type?: DiscountType;
  is_active?: boolean;
  tickets_number?: number | null;
  min_quantity?: number;
  max_quantity?: number;
  valid_from?: Date | null;
  valid_till?: Date | null;
  used_for?: CodeKind;
  event_id?: string | null;
  marketer_id?: string | null;
}

const conflict = "Cannot save discount code: the event already has a live code with this text";

function live(sql: Queryable, withTrashed: boolean): Fragment {
  return withTrashed ? sql`true` : sql`deleted_at is null`;
}

export async function getCode(
  sql: Queryable,
  id: string | undefined,
  withTrashed = false,
): Promise<CodeRow | undefined> {
  if (!isId(id)) return undefined;
  const [row] = await sql<CodeRow[]>`select * from code_rows
    where id = ${id} and ${live(sql, withTrashed)}`;
  return row;
}

/**
 * The live code `id` with its row locked until the transaction ends: concurrent changes of one
 * code run one after the other, each checking the rules on what the other left.
 */
export async function lockCode(tx: Queryable, id: string): Promise<CodeRow | undefined> {
  if (!isId(id)) return undefined;
  const [locked] = await tx`select id from discount_codes
    where id = ${id} and deleted_at is null for update`;
  return locked ? await getCode(tx, id) : undefined;
}

/**
 * Code `id`, trashed or not, with its row locked until the transaction ends: what a delete
 * starts from, so that its fact shows the code as the last change left it.
 */
export async function lockCodeForDelete(tx: Queryable, id: string): Promise<CodeRow | undefined> {
  if (!isId(id)) return undefined;
  const [locked] = await tx`select id from discount_codes where id = ${id} for update`;
  return locked ? await getCode(tx, id, true) : undefined;
}

export async function getCodes(sql: Queryable, ids: string[]): Promise<CodeRow[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  return await sql<CodeRow[]>`select * from code_rows where id in ${
    sql(valid)
  } and deleted_at is null`;
}

/** Which codes a list shows: by event, marketer or ticket (all when none is given). */
export interface CodeScope {
  eventId?: string;
  marketerId?: string;
  ticketId?: string;
  usedFor?: CodeKind;
  /** Only ticket codes of these events (none: no code), when given. */
  ofEvents?: string[];
}

/** Ticket codes of `eventIds` only, when given: what a non-admin may still manage. */
function ofEvents(sql: Queryable, eventIds: string[] | undefined): Fragment {
  if (!eventIds) return sql`true`;
  const valid = eventIds.filter(isId);
  return valid.length ? sql`used_for = 'ticket' and event_id in ${sql(valid)}` : sql`false`;
}

export async function listCodes(
  sql: Queryable,
  query: ListQuery,
  options: { scope?: CodeScope; withTrashed?: boolean } = {},
): Promise<{ rows: CodeRow[]; count: number }> {
  const { scope = {} } = options;
  const where = sql`${live(sql, !!options.withTrashed)}
    and ${scope.eventId ? sql`event_id = ${scope.eventId}` : sql`true`}
    and ${scope.marketerId ? sql`marketer_id = ${scope.marketerId}` : sql`true`}
    and ${scope.usedFor ? sql`used_for = ${scope.usedFor}` : sql`true`}
    and ${ofEvents(sql, scope.ofEvents)}
    and ${
    scope.ticketId
      ? sql`exists (select 1 from discount_code_tickets t
          where t.discount_code_id = code_rows.id and t.ticket_id = ${scope.ticketId})`
      : sql`true`
  }
    and ${whereSql(sql, query.filter)}`;
  const rows = await sql<(CodeRow & { total_count: string })[]>`select *,
    count(*) over () as total_count from code_rows
    where ${where} ${orderSql(sql, query.sort)} ${pageSql(sql, query.page)}`;
  if (rows.length) {
    const count = Number(rows[0].total_count);
    return { rows: rows.map(({ total_count: _, ...row }) => row), count };
  }
  const [{ count }] = await sql<
    { count: number }[]
  >`select count(*)::int as count from code_rows where ${where}`;
  return { rows: [], count };
}

/** The live ticket-kind code of `eventId` whose text is `code`, compared case-insensitively. */
export async function findByText(
  sql: Queryable,
  eventId: string,
  code: string,
): Promise<CodeRow | undefined> {
  const [row] = await sql<CodeRow[]>`select * from code_rows where event_id = ${eventId}
    and lower(code) = lower(${code}) and deleted_at is null`;
  return row;
}

/** The live event-kind code applied to `eventId`, if any. */
export async function eventCodeOf(
  sql: Queryable,
  eventId: string,
): Promise<CodeRow | undefined> {
  if (!isId(eventId)) return undefined;
  const [row] = await sql<CodeRow[]>`select c.* from code_rows c
    join discount_code_events e on e.discount_code_id = c.id
    where e.event_id = ${eventId} and c.deleted_at is null`;
  return row;
}

const columns = [
  "code",
  "discount_url",
  "value",
  "type",
  "is_active",
  "tickets_number",
  "min_quantity",
  "max_quantity",
  "valid_from",
  "valid_till",
  "used_for",
  "event_id",
  "marketer_id",
] as const;

/**
 * What a write links a code to. `namedEvents`: the events of `eventIds` the write named and the
 * catalog found live under their locks (`checkStillNamed`), applied anew (`setEvents`).
 */
export interface CodeLinks {
  ticketIds?: string[];
  eventIds?: string[];
  namedEvents?: string[];
}

async function setLinks(tx: Queryable, id: string, links: CodeLinks): Promise<void> {
  if (links.ticketIds) {
    await tx`delete from discount_code_tickets where discount_code_id = ${id}`;
    if (links.ticketIds.length) {
      const rows = links.ticketIds.map((ticket_id) => ({ discount_code_id: id, ticket_id }));
      await tx`insert into discount_code_tickets ${tx(rows, "discount_code_id", "ticket_id")}`;
    }
  }
  if (links.eventIds) await setEvents(tx, id, links.eventIds, links.namedEvents ?? []);
}

/**
 * Applies an event code to exactly `eventIds`. An application kept keeps its `applied_at` (a
 * change that keeps an event, not asked of the catalog again, is no new application of it: a
 * deletion of that event handled late must still take it away, see follow_catalog.ts). One the
 * write `named` is made anew: found live now, its event was restored after any deletion older
 * than this write, and a deletion handled late must leave it, as it leaves a new one.
 */
async function setEvents(
  tx: Queryable,
  id: string,
  eventIds: string[],
  named: string[],
): Promise<void> {
  await tx`delete from discount_code_events where discount_code_id = ${id}
    and (event_id <> all(${eventIds}::bigint[]) or event_id = any(${named}::bigint[]))`;
  const kept = await tx<{ event_id: string }[]>`select event_id::text from discount_code_events
    where discount_code_id = ${id}`;
  const stay = new Set(kept.map((row) => row.event_id));
  // In id order, whatever order the client named them in: two writes applying codes to the same
  // events took their rows (unique: one event code per event) in opposite orders and deadlocked,
  // a 503 where the later write is a 409.
  const rows = eventIds.filter((event_id) => !stay.has(event_id))
    .toSorted((a, b) => Number(a) - Number(b))
    .map((event_id) => ({ discount_code_id: id, event_id }));
  if (rows.length) {
    await tx`insert into discount_code_events ${tx(rows, "discount_code_id", "event_id")}`;
  }
}

export async function insertCode(
  tx: Queryable,
  values: CodeValues,
  links: CodeLinks,
): Promise<CodeRow> {
  try {
    const keys = columns.filter((key) => values[key] !== undefined);
    const [{ id }] = await tx<{ id: string }[]>`insert into discount_codes ${
      tx(values, ...keys)
    } returning id`;
    await setLinks(tx, String(id), links);
    return (await getCode(tx, String(id)))!;
  } catch (error) {
    throw translate(error);
  }
}

export async function updateCode(
  tx: Queryable,
  id: string,
  values: CodeValues,
  links: CodeLinks,
): Promise<CodeRow> {
  try {
    const keys = columns.filter((key) => values[key] !== undefined);
    if (keys.length) await tx`update discount_codes set ${tx(values, ...keys)} where id = ${id}`;
    await setLinks(tx, id, links);
    return (await getCode(tx, id, true))!;
  } catch (error) {
    throw translate(error);
  }
}

/** Database errors as API errors; a check that a concurrent change broke is a conflict. */
function translate(error: unknown): unknown {
  if ((error as { code?: string })?.code === "23514") {
    return new ConflictError("Cannot save discount code: it no longer fits its current uses", {
      cause: error,
    });
  }
  if ((error as { code?: string })?.code === "23505") return conflictOf(error);
  return translateDbError(error);
}

/** Which rule of uniqueness a 23505 broke, pointing at what the client should change. */
function conflictOf(error: unknown): ConflictError {
  const constraint = (error as { constraint_name?: string })?.constraint_name;
  if (constraint === "discount_code_events_pkey") {
    return new ConflictError(
      "Cannot save discount code: an event already has an event discount code",
      {
        pointer: "/data/relationships/events",
        cause: error,
      },
    );
  }
  return new ConflictError(conflict, { pointer: "/data/attributes/code", cause: error });
}

/**
 * Deletes code `id`: soft (the code stops applying anywhere) or, for admins, for good. False when
 * there was nothing left to delete (a concurrent delete won).
 */
export async function deleteCode(tx: Queryable, id: string, permanent: boolean): Promise<boolean> {
  if (permanent) {
    return (await tx`delete from discount_codes where id = ${id}`).count > 0;
  }
  const deleted = await tx`update discount_codes set deleted_at = now()
    where id = ${id} and deleted_at is null`;
  await tx`delete from discount_code_events where discount_code_id = ${id}`;
  return deleted.count > 0;
}

/**
 * Which live codes hold `eventId`: its ticket codes and the event code applied to it, in id
 * order, the order an event's deletion locks them in (`lockCodesOfEvent`). In the order a scan
 * met them (a code whose text changed comes last), that deletion and a ticket's, handled by two
 * instances at once, deadlocked.
 */
export async function codesOfEvent(sql: Queryable, eventId: string): Promise<CodeRow[]> {
  return await sql<
    CodeRow[]
  >`select * from code_rows where deleted_at is null and (event_id = ${eventId}
    or id in (select discount_code_id from discount_code_events where event_id = ${eventId}))
    order by id`;
}

/**
 * Locks every code an event's deletion may change, in id order, before it changes any: its ticket
 * codes, trashed ones too (a purge deletes them), and the event codes applied to it. A purge
 * locked its ticket codes before the event code, whatever their ids, and deadlocked with a purged
 * marketer's codes (`forgetMarketer`) handled at once by another instance.
 */
export async function lockCodesOfEvent(tx: Queryable, eventId: string): Promise<void> {
  await tx`select id from discount_codes where event_id = ${eventId}
    or id in (select discount_code_id from discount_code_events where event_id = ${eventId})
    order by id for update`;
}

/** Codes by the id of the parent (event or ticket) they were read for. */
export type CodesByParent = Map<string, CodeRow[]>;

/** Rows of `code_rows` with the parent each was read for, grouped by that parent. */
function byParent(rows: (CodeRow & { parent_id: string })[]): CodesByParent {
  const grouped: CodesByParent = new Map();
  for (const { parent_id, ...code } of rows) {
    grouped.set(parent_id, [...grouped.get(parent_id) ?? [], code]);
  }
  return grouped;
}

/** Whether a read of codes by parent takes soft-deleted codes too (an admin's `get_trashed`). */
export interface TrashOption {
  withTrashed?: boolean;
}

/**
 * Live codes (all with `withTrashed`) each of `ticketIds` is attached to, in id order, in one
 * statement: an include on a page of 1,000 tickets read them ticket by ticket, 1,000 statements.
 */
export async function codesOfTickets(
  sql: Queryable,
  ticketIds: string[],
  { withTrashed = false }: TrashOption = {},
): Promise<CodesByParent> {
  const valid = [...new Set(ticketIds.filter(isId))];
  if (!valid.length) return new Map();
  // `live` names no table: the link table has no deleted_at.
  return byParent(
    await sql<(CodeRow & { parent_id: string })[]>`select t.ticket_id::text as parent_id, c.*
      from discount_code_tickets t join code_rows c on c.id = t.discount_code_id
      where t.ticket_id in ${sql(valid)} and ${live(sql, withTrashed)} order by c.id`,
  );
}

/** The live ticket-kind codes (all with `withTrashed`) of each of `eventIds`, in one statement. */
export async function ticketCodesOfEvents(
  sql: Queryable,
  eventIds: string[],
  { withTrashed = false }: TrashOption = {},
): Promise<CodesByParent> {
  const valid = [...new Set(eventIds.filter(isId))];
  if (!valid.length) return new Map();
  return byParent(
    await sql<(CodeRow & { parent_id: string })[]>`select event_id::text as parent_id, *
      from code_rows where used_for = 'ticket' and event_id in ${sql(valid)}
        and ${live(sql, withTrashed)} order by id`,
  );
}

/** The live event-kind code applied to each of `eventIds` (at most one each), in one statement. */
export async function eventCodesOfEvents(
  sql: Queryable,
  eventIds: string[],
): Promise<Map<string, CodeRow>> {
  const valid = [...new Set(eventIds.filter(isId))];
  if (!valid.length) return new Map();
  const grouped = byParent(
    await sql<(CodeRow & { parent_id: string })[]>`select e.event_id::text as parent_id, c.*
      from discount_code_events e join code_rows c on c.id = e.discount_code_id
      where e.event_id in ${sql(valid)} and c.deleted_at is null`,
  );
  return new Map([...grouped].map(([eventId, [code]]) => [eventId, code]));
}

/**
 * Live codes (all with `withTrashed`) each of `marketerIds` created, as
 * `/v1/users/{id}/discount-codes` lists them, in id order, in one statement; only the ticket codes
 * of `options.ofEvents` when given. An include on a page of 200 users read them user by user, 200
 * statements.
 */
export async function codesOfMarketers(
  sql: Queryable,
  marketerIds: string[],
  options: { ofEvents?: string[] } & TrashOption = {},
): Promise<CodesByParent> {
  const valid = [...new Set(marketerIds.filter(isId))];
  if (!valid.length) return new Map();
  return byParent(
    await sql<(CodeRow & { parent_id: string })[]>`select marketer_id::text as parent_id, *
      from code_rows where ${live(sql, !!options.withTrashed)} and marketer_id in ${sql(valid)}
        and ${ofEvents(sql, options.ofEvents)} order by id`,
  );
}

/** The events of the live ticket codes `marketerId` created. */
export async function eventsOfMarketer(sql: Queryable, marketerId: string): Promise<string[]> {
  if (!isId(marketerId)) return [];
  const rows = await sql<{ id: string }[]>`select distinct event_id::text as id
    from discount_codes where deleted_at is null and used_for = 'ticket'
      and marketer_id = ${marketerId}`;
  return rows.map((row) => row.id);
}

/**
 * Un-applies the event code of one event, if it was applied no later than `appliedBy`; true
 * when it was. The code is locked first (see `detachTicket`).
 */
export async function unapplyEvent(
  tx: Queryable,
  eventId: string,
  appliedBy: Date,
): Promise<boolean> {
  await tx`select id from discount_codes where id in (select discount_code_id
    from discount_code_events where event_id = ${eventId} and applied_at <= ${appliedBy})
    order by id for update`;
  const rows = await tx`delete from discount_code_events
    where event_id = ${eventId} and applied_at <= ${appliedBy} returning event_id`;
  return rows.length > 0;
}

/**
 * Detaches a ticket from codes; returns their ids. A soft-deleted ticket leaves the live codes
 * only: the trash keeps the codes as their deletion left them. A purged one (`purged`) leaves
 * every code, trashed ones too: nothing may name a row that is gone for good (their `updated`
 * facts carry their `deleted-at`, so they stay deleted in a mirror). The codes are locked first,
 * as `unapplyEvent` does: a change of one in flight (a PATCH) commits before they are read for
 * their facts, so the last fact of a code shows it as it is (until 2026-12-04 the fact could
 * show the value from before the PATCH, and the PATCH's the ticket: a review).
 */
export async function detachTicket(
  tx: Queryable,
  ticketId: string,
  options: { purged?: boolean } = {},
): Promise<string[]> {
  await tx`select id from discount_codes where id in (select discount_code_id
    from discount_code_tickets where ticket_id = ${ticketId}) order by id for update`;
  const rows = await tx<{ id: string }[]>`delete from discount_code_tickets
    where ticket_id = ${ticketId}
      and ${
    options.purged
      ? tx`true`
      : tx`discount_code_id in (select id from discount_codes where deleted_at is null)`
  }
    returning discount_code_id::text as id`;
  return rows.map((row) => row.id).sort((a, b) => Number(a) - Number(b));
}

/**
 * Deletes for good the ticket codes of a purged event, trashed ones too (a ticket code cannot
 * be without its event); returns them as they were, locked first so that the rows are those
 * deleted.
 */
export async function purgeCodesOfEvent(tx: Queryable, eventId: string): Promise<CodeRow[]> {
  const locked = await tx<{ id: string }[]>`select id::text as id from discount_codes
    where event_id = ${eventId} order by id for update`;
  if (!locked.length) return [];
  const ids = locked.map((row) => row.id);
  const rows = await tx<CodeRow[]>`select * from code_rows where id in ${tx(ids)} order by id`;
  await tx`delete from discount_codes where id in ${tx(ids)}`;
  return rows;
}

/**
 * Unsets a purged user as the marketer of every code, trashed ones too; returns their ids. The
 * codes are locked in id order first: the update alone took them in the order it met them, and
 * deadlocked with a ticket's deletion (`detachTicket`) handled at once by another instance.
 */
export async function forgetMarketer(tx: Queryable, userId: string): Promise<string[]> {
  await tx`select id from discount_codes where marketer_id = ${userId} order by id for update`;
  const rows = await tx<{ id: string }[]>`update discount_codes set marketer_id = null
    where marketer_id = ${userId} returning id::text as id`;
  return rows.map((row) => row.id).sort((a, b) => Number(a) - Number(b));
}
