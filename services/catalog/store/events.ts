/** All SQL about events. */
import { isId } from "@shared/schemas/ids.ts";
import type { Queryable } from "@shared/db.ts";
import { translateDbError } from "@shared/db.ts";
import type { ListQuery } from "@shared/query.ts";
import { deleteRow, type Fragment, idsAmong, listRows, liveRows } from "./common.ts";
import type { EventRow, GrantRow, TicketRow } from "./rows.ts";
import { type Caller, callerOf, findCaller } from "./users.ts";
import type { Actor } from "@shared/schemas/http.ts";

/** Who is looking: drafts are visible to admins and to people with a role on the event. */
export interface Viewer {
  id: string | null;
  admin: boolean;
}

export function visibleEvents(sql: Queryable, viewer: Viewer): Fragment {
  if (viewer.admin) return sql`true`;
  if (!viewer.id) return sql`events.state = 'published'`;
  return sql`(events.state = 'published' or exists (
    select 1 from users_events_roles r where r.event_id = events.id and r.user_id = ${viewer.id}))`;
}

/** `{id}` in a URL is the numeric id or the 8-character identifier. */
function eventKey(sql: Queryable, key: string): Fragment | null {
  if (isId(key)) return sql`events.id = ${key}`;
  if (/^[0-9a-f]{8}$/.test(key)) return sql`events.identifier = ${key}`;
  return null;
}

export async function getEvent(
  sql: Queryable,
  key: string,
  options: { viewer: Viewer; withTrashed?: boolean },
): Promise<EventRow | undefined> {
  const match = eventKey(sql, key);
  if (!match) return undefined;
  const [row] = await sql<EventRow[]>`select * from events where ${match}
    and ${liveRows(sql, "events", !!options.withTrashed)} and ${
    visibleEvents(sql, options.viewer)
  }`;
  return row;
}

/**
 * Which of `ids` name events that exist and are not in the trash, whoever looks (drafts too): what
 * another service must know before it acts on an old deletion.
 */
export async function liveEventIds(sql: Queryable, ids: string[]): Promise<string[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  const rows = await sql<{ id: string }[]>`select id::text as id from events
    where id in ${sql(valid)} and ${liveRows(sql, "events", false)}`;
  return rows.map((row) => row.id);
}

/**
 * `getEvent` for many keys (ids or identifiers) in one statement, each found event with the
 * viewer's roles on it (as `rolesOnEvent` reads them): by the key it was asked for.
 */
export async function getEventsWithRoles(
  sql: Queryable,
  keys: string[],
  options: { viewer: Viewer },
): Promise<Map<string, { event: EventRow; roles: string[] }>> {
  const ids = keys.filter(isId);
  const identifiers = keys.filter((key) => !isId(key) && /^[0-9a-f]{8}$/.test(key));
  if (!ids.length && !identifiers.length) return new Map();
  const { viewer } = options;
  const among = [
    ...(ids.length ? [sql`events.id in ${sql(ids)}`] : []),
    ...(identifiers.length ? [sql`events.identifier in ${sql(identifiers)}`] : []),
  ];
  const rows = await sql<(EventRow & { viewer_roles: string[] })[]>`select events.*,
      array(select r.role_name from users_events_roles r
        where r.event_id = events.id and r.user_id = ${isId(viewer.id) ? viewer.id : null})
        as viewer_roles
    from events where (${among.length === 2 ? sql`${among[0]} or ${among[1]}` : among[0]})
    and ${liveRows(sql, "events", false)} and ${visibleEvents(sql, viewer)}`;
  // A key of digits is an id, never an identifier (as `eventKey` reads it).
  const byId = new Map(rows.map(({ viewer_roles: roles, ...event }) => [
    String(event.id),
    { event: event as EventRow, roles },
  ]));
  const byIdentifier = new Map([...byId.values()].map((row) => [row.event.identifier, row]));
  const found = new Map<string, { event: EventRow; roles: string[] }>();
  for (const key of keys) {
    const row = isId(key) ? byId.get(key) : byIdentifier.get(key);
    if (row) found.set(key, row);
  }
  return found;
}

/** What `getEventAs` found: the caller (none: no such live user) and the event they may see. */
export interface EventAs {
  caller?: Caller;
  event?: EventRow;
}

/**
 * `getEvent` for a signed-in caller, who is read in the same statement (a signed-in read costs
 * one round trip, as an anonymous one does): the caller's admin flags decide, in SQL, whether
 * drafts and (with `trashedAsked`) deleted events are visible, as `viewer` and `withTrashed` do.
 * The caller is found only at the token's version (`findCaller`).
 */
export async function getEventAs(
  sql: Queryable,
  key: string,
  options: { actor: Actor; trashedAsked: boolean },
): Promise<EventAs> {
  const { actor, trashedAsked } = options;
  const actorId = actor.id;
  if (!isId(actorId)) return {};
  const match = eventKey(sql, key);
  if (!match) return { caller: await findCaller(sql, actor) ?? undefined };
  const [row] = await sql`select c.id as caller_id, c.email as caller_email,
      c.is_admin as caller_is_admin, c.is_super_admin as caller_is_super_admin, e.*
    from users c left join lateral (select * from events where ${match}
      and (events.deleted_at is null or (${trashedAsked} and (c.is_admin or c.is_super_admin)))
      and (c.is_admin or c.is_super_admin or events.state = 'published' or exists (
        select 1 from users_events_roles r where r.event_id = events.id and r.user_id = c.id))
    ) e on true
    where c.id = ${actorId} and c.deleted_at is null
      and c.token_version = ${actor.tokenVersion ?? 0}`;
  if (!row) return {};
  const { caller_id, caller_email, caller_is_admin, caller_is_super_admin, ...event } = row;
  const caller = callerOf({
    id: caller_id,
    email: caller_email,
    is_admin: caller_is_admin,
    is_super_admin: caller_is_super_admin,
  });
  return { caller, event: event.id === null ? undefined : event as EventRow };
}

/** `getEvent` for many ids (trashed ones too, `withTrashed`). */
export async function getEvents(
  sql: Queryable,
  ids: string[],
  { viewer, withTrashed = false }: { viewer: Viewer; withTrashed?: boolean },
): Promise<EventRow[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  return await sql<EventRow[]>`select * from events where id in ${sql(valid)}
    and ${liveRows(sql, "events", withTrashed)} and ${visibleEvents(sql, viewer)}`;
}

/**
 * Live events (trashed ones too, `withTrashed`) of several topics or sub-topics at once, as
 * `viewer` may see them (`include=events`).
 */
export async function eventsUnder(
  sql: Queryable,
  ids: string[],
  options: {
    column: "event_topic_id" | "event_sub_topic_id";
    viewer: Viewer;
    withTrashed?: boolean;
  },
): Promise<EventRow[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  return await sql<EventRow[]>`select * from events where ${sql(options.column)} in ${sql(valid)}
    and ${liveRows(sql, "events", !!options.withTrashed)}
    and ${visibleEvents(sql, options.viewer)} order by id`;
}

/** A grant `held` of the role named `role`, or of any role when there is none. */
const ofRole = (sql: Queryable, role: string | undefined): Fragment =>
  role === undefined ? sql`true` : sql`held.role_name = ${role}`;

/**
 * Live events (trashed ones too, `withTrashed`) on which each of `userIds` holds a role (`role`,
 * or any), as `viewer` may see them: one row per user and event, the user in `role_user_id` (an
 * event shared by two users comes twice).
 */
export async function eventsOfUsers(
  sql: Queryable,
  userIds: string[],
  options: { viewer: Viewer; role?: string; withTrashed?: boolean },
): Promise<(EventRow & { role_user_id: string })[]> {
  const valid = userIds.filter(isId);
  if (!valid.length) return [];
  return await sql<(EventRow & { role_user_id: string })[]>`select distinct
      held.user_id as role_user_id, events.*
    from events join users_events_roles held on held.event_id = events.id
    where held.user_id in ${sql(valid)} and ${ofRole(sql, options.role)}
      and ${liveRows(sql, "events", !!options.withTrashed)}
      and ${visibleEvents(sql, options.viewer)} order by events.id`;
}

export interface EventScope {
  topicId?: string;
  subTopicId?: string;
  /** Events on which this user holds a role: `role`, or any. */
  userId?: string;
  role?: string;
  /** Only these events (a discount code's). */
  ids?: string[];
}

export function listEvents(
  sql: Queryable,
  query: ListQuery,
  options: { viewer: Viewer; scope?: EventScope; withTrashed?: boolean },
) {
  const { scope = {} } = options;
  const where = sql`${liveRows(sql, "events", !!options.withTrashed)}
    and ${visibleEvents(sql, options.viewer)}
    and ${scope.topicId ? sql`event_topic_id = ${scope.topicId}` : sql`true`}
    and ${scope.subTopicId ? sql`event_sub_topic_id = ${scope.subTopicId}` : sql`true`}
    and ${
    scope.userId
      ? sql`exists (select 1 from users_events_roles held
          where held.event_id = events.id and held.user_id = ${scope.userId}
            and ${ofRole(sql, scope.role)})`
      : sql`true`
  } and ${idsAmong(sql, "events", scope.ids)}`;
  return listRows<EventRow>(sql, "events", where, query, { withTrashed: !!options.withTrashed });
}

export interface EventValues {
  name?: string;
  description?: string | null;
  location_name?: string | null;
  starts_at?: Date;
  ends_at?: Date;
  timezone?: string;
  state?: string;
  privacy?: string;
  can_pay_by_stripe?: boolean;
  payment_currency?: string | null;
  event_topic_id?: string | null;
  event_sub_topic_id?: string | null;
  /** Only ever null: an admin restores a soft-deleted event (handlers/events.ts `restores`). */
  deleted_at?: null;
}

function newIdentifier(): string {
  // First character a-f: an identifier never looks like a numeric id.
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(4)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return "abcdef"[Number.parseInt(hex[0], 16) % 6] + hex.slice(1);
}

/** Draws of an identifier before giving up: each is taken with odds of events / 1.6e9. */
const IDENTIFIER_DRAWS = 8;

/**
 * Inserts the event under a new identifier, drawn again while the one drawn is taken (8 hex
 * characters collide now and then among many events; the creator must not get a 409 for it).
 */
async function insertUnderNewIdentifier(
  tx: Queryable,
  values: EventValues & { owner_id: string },
): Promise<EventRow> {
  for (let draw = 0; draw < IDENTIFIER_DRAWS; draw++) {
    const row = { ...values, identifier: newIdentifier() };
    const [event] = await tx<EventRow[]>`insert into events ${
      tx(row, ...Object.keys(row) as never[])
    } on conflict (identifier) do nothing returning *`;
    if (event) return event;
  }
  throw new Error(`Cannot create an event: ${IDENTIFIER_DRAWS} identifiers drawn were all taken`);
}

/** Inserts the event and makes its creator the owner. */
export async function insertEvent(
  tx: Queryable,
  values: EventValues,
  ownerId: string,
): Promise<EventRow & { owner_role: GrantRow }> {
  try {
    const event = await insertUnderNewIdentifier(tx, { ...values, owner_id: ownerId });
    const [role] = await tx<
      GrantRow[]
    >`insert into users_events_roles (user_id, event_id, role_name)
      values (${ownerId}, ${event.id}, 'owner') returning *`;
    return { ...event, owner_role: role };
  } catch (error) {
    throw translateDbError(error);
  }
}

export async function updateEvent(
  tx: Queryable,
  id: string,
  values: EventValues,
): Promise<EventRow> {
  const keys = Object.keys(values) as (keyof EventValues)[];
  try {
    const [row] = keys.length
      ? await tx<EventRow[]>`update events set ${tx(values, ...keys)} where id = ${id} returning *`
      : await tx<EventRow[]>`select * from events where id = ${id}`;
    return row;
  } catch (error) {
    throw translateDbError(error);
  }
}

/**
 * Whether event `id` is live, its row then share-locked until the transaction `tx` ends: what is
 * written under it (a ticket) waits for a DELETE of it, or makes that DELETE wait.
 */
export async function lockLiveEvent(tx: Queryable, id: string): Promise<boolean> {
  if (!isId(id)) return false;
  const [row] = await tx`select id from events where id = ${id} and deleted_at is null for share`;
  return row !== undefined;
}

/**
 * Whether event `id` is live as `tx` sees it now, without a lock: a ticket's PATCH, which holds
 * the ticket's row, asks so (a lock on the event there could deadlock with a purge, which locks
 * the event, then its tickets); a DELETE committed later simply comes after the change.
 */
export async function isLiveEvent(tx: Queryable, id: string): Promise<boolean> {
  if (!isId(id)) return false;
  const [row] = await tx`select 1 from events where id = ${id} and deleted_at is null`;
  return row !== undefined;
}

export function deleteEvent(tx: Queryable, id: string, permanent: boolean) {
  return deleteRow<EventRow>(tx, "events", id, permanent);
}

/**
 * Before a permanent delete of event `id`: deletes its tickets and its users' roles, as the
 * schema's cascades would (silently), and returns them, so that each has its fact. The event row
 * is locked first: a ticket or role added meanwhile waits, then fails (the event is gone).
 */
export async function purgeEventDependents(
  tx: Queryable,
  id: string,
): Promise<{ tickets: TicketRow[]; grants: GrantRow[] }> {
  await tx`select id from events where id = ${id} for update`;
  const tickets = await tx<TicketRow[]>`delete from tickets where event_id = ${id} returning *`;
  const grants = await tx<GrantRow[]>`delete from users_events_roles
    where event_id = ${id} returning *`;
  return { tickets, grants };
}

/**
 * Sets is_stripe_linked from a payments fact, unless a newer fact already decided it; the event
 * as it is now when its is_stripe_linked changed (so that it can be announced), else undefined.
 */
export async function applyStripeLink(
  sql: Queryable,
  eventId: string,
  linked: boolean,
  at: Date,
): Promise<EventRow | undefined> {
  if (!isId(eventId)) return undefined;
  const [row] = await sql<(EventRow & { was_linked: boolean })[]>`
    with old as (select id, is_stripe_linked from events where id = ${eventId} for update)
    update events e set is_stripe_linked = ${linked}, stripe_linked_at = ${at}
    from old where e.id = old.id and (e.stripe_linked_at is null or e.stripe_linked_at <= ${at})
    returning e.*, old.is_stripe_linked as was_linked`;
  if (!row || row.was_linked === linked) return undefined;
  const { was_linked: _, ...event } = row;
  return event;
}
