/** All SQL about tickets. */
import { isId } from "@shared/schemas/ids.ts";
import type { Queryable } from "@shared/db.ts";
import { advisoryXactLock, translateDbError } from "@shared/db.ts";
import type { ListQuery } from "@shared/query.ts";
import { deleteRow, idsAmong, listRows, liveRows } from "./common.ts";
import { type Viewer, visibleEvents } from "./events.ts";
import type { TicketRow } from "./rows.ts";

export async function getTicket(
  sql: Queryable,
  id: string,
  withTrashed = false,
): Promise<TicketRow | undefined> {
  if (!isId(id)) return undefined;
  const [row] = await sql<TicketRow[]>`select * from tickets where id = ${id} and ${
    liveRows(sql, "tickets", withTrashed)
  }`;
  return row;
}

export async function getTickets(
  sql: Queryable,
  ids: string[],
  { withTrashed = false }: { withTrashed?: boolean } = {},
): Promise<TicketRow[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  return await sql<TicketRow[]>`select * from tickets where id in ${sql(valid)} and ${
    liveRows(sql, "tickets", withTrashed)
  }`;
}

/** Live tickets (trashed ones too, `withTrashed`) of several events at once (`include=tickets`). */
export async function ticketsOf(
  sql: Queryable,
  eventIds: string[],
  { withTrashed = false }: { withTrashed?: boolean } = {},
): Promise<TicketRow[]> {
  const valid = eventIds.filter(isId);
  if (!valid.length) return [];
  return await sql<TicketRow[]>`select * from tickets
    where event_id in ${sql(valid)} and ${liveRows(sql, "tickets", withTrashed)} order by id`;
}

/**
 * A page of tickets: live ones of live events (a soft-deleted event hides its tickets as it hides
 * itself: the admin list showed them, linked to an event it did not include), or, `withTrashed`,
 * every one. With `eventId`, that event's: its route has already decided whether it is seen.
 * With `viewer`, only tickets of events they may see (drafts stay with their organizers); with
 * `ids`, only those (a discount code's tickets).
 */
export function listTickets(
  sql: Queryable,
  query: ListQuery,
  options: { eventId?: string; withTrashed?: boolean; viewer?: Viewer; ids?: string[] } = {},
) {
  const { viewer, withTrashed = false } = options;
  const liveEvent = options.eventId
    ? sql`true`
    : viewer
    ? sql`event_id in (select id from events where ${liveRows(sql, "events", withTrashed)}
        and ${visibleEvents(sql, viewer)})`
    : withTrashed
    ? sql`true`
    : sql`event_id in (select id from events where deleted_at is null)`;
  const where = sql`${liveRows(sql, "tickets", withTrashed)} and ${liveEvent} and ${
    options.eventId ? sql`event_id = ${options.eventId}` : sql`true`
  } and ${idsAmong(sql, "tickets", options.ids)}`;
  return listRows<TicketRow>(sql, "tickets", where, query);
}

export interface TicketValues {
  event_id?: string;
  name?: string;
  description?: string | null;
  type?: string;
  price?: string;
  quantity?: number;
  sales_starts_at?: Date | null;
  sales_ends_at?: Date | null;
}

/**
 * Whether event `eventId` has a live ticket named `name` other than `exceptId`. Takes the event's
 * lock on ticket names first (held to the end of the transaction), so two writes of one name at
 * once cannot both find it free.
 */
export async function ticketNameTaken(
  tx: Queryable,
  eventId: string,
  name: string,
  exceptId?: string,
): Promise<boolean> {
  await advisoryXactLock(tx, `catalog:ticket-names:${eventId}`);
  const [row] = await tx`select 1 from tickets where event_id = ${eventId} and name = ${name}
    and deleted_at is null and id <> ${exceptId ?? 0}`;
  return row !== undefined;
}

export async function insertTicket(tx: Queryable, values: TicketValues): Promise<TicketRow> {
  try {
    const [row] = await tx<TicketRow[]>`insert into tickets ${
      tx(values, ...Object.keys(values) as (keyof TicketValues)[])
    } returning *`;
    return row;
  } catch (error) {
    throw translateDbError(error);
  }
}

export async function updateTicket(
  tx: Queryable,
  id: string,
  values: TicketValues,
): Promise<TicketRow> {
  const keys = Object.keys(values) as (keyof TicketValues)[];
  try {
    const [row] = keys.length
      ? await tx<TicketRow[]>`update tickets set ${
        tx(values, ...keys)
      } where id = ${id} returning *`
      : await tx<TicketRow[]>`select * from tickets where id = ${id}`;
    return row;
  } catch (error) {
    throw translateDbError(error);
  }
}

export function deleteTicket(tx: Queryable, id: string, permanent: boolean) {
  return deleteRow<TicketRow>(tx, "tickets", id, permanent);
}
