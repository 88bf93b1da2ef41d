/** All SQL about roles and event role grants. */
import { isId } from "@shared/schemas/ids.ts";
import type { Queryable } from "@shared/db.ts";
import { translateDbError } from "@shared/db.ts";
import type { ListQuery } from "@shared/query.ts";
import { orderSql, whereSql } from "@shared/query_sql.ts";
import { listRows } from "./common.ts";
import type { EventRow, GrantRow, RoleRow } from "./rows.ts";

/**
 * Roles are few and fixed (their name is their id): every match is read, and the page cut from
 * it, so `meta.count` and the paging links hold as on every other list.
 */
export async function listRoles(
  sql: Queryable,
  query: ListQuery,
): Promise<{ rows: RoleRow[]; count: number }> {
  const rows = await sql<RoleRow[]>`select name as id, name, title_name from roles
    where ${whereSql(sql, query.filter)} ${orderSql(sql, query.sort, "name")}`;
  const { size, number } = query.page;
  const page = size === 0 ? rows : rows.slice((number - 1) * size, number * size);
  return { rows: page, count: rows.length };
}

export async function getRole(sql: Queryable, name: string): Promise<RoleRow | undefined> {
  // No role is named with a NUL, and Postgres refuses one in text (a 400 from the path).
  if (name.includes("\0")) return undefined;
  const [row] = await sql<
    RoleRow[]
  >`select name as id, name, title_name from roles where name = ${name}`;
  return row;
}

export async function getRoles(sql: Queryable, names: string[]): Promise<RoleRow[]> {
  if (!names.length) return [];
  return await sql<RoleRow[]>`select name as id, name, title_name from roles where name in ${
    sql(names)
  }`;
}

/** A grant is hidden with its event: a role on a soft-deleted event shows to `withTrashed` only. */
function onLiveEvent(sql: Queryable, withTrashed: boolean) {
  return withTrashed
    ? sql`true`
    : sql`event_id in (select id from events where deleted_at is null)`;
}

/** Grant `id`, unless its event is soft-deleted (then admins asking for the trash only). */
export async function getGrant(
  sql: Queryable,
  id: string,
  options: { withTrashed?: boolean } = {},
): Promise<GrantRow | undefined> {
  if (!isId(id)) return undefined;
  const [row] = await sql<GrantRow[]>`select * from users_events_roles
    where id = ${id} and ${onLiveEvent(sql, options.withTrashed ?? false)}`;
  return row;
}

/**
 * The grants of one event (whose visibility the route checked) or of one user (on live events
 * only, unless `withTrashed`).
 */
export function listGrants(
  sql: Queryable,
  query: ListQuery,
  scope: { eventId?: string; userId?: string; withTrashed?: boolean },
) {
  const where = sql`${scope.eventId ? sql`event_id = ${scope.eventId}` : sql`true`} and ${
    scope.userId
      ? sql`user_id = ${scope.userId} and ${onLiveEvent(sql, scope.withTrashed ?? false)}`
      : sql`true`
  }`;
  return listRows<GrantRow>(sql, "users_events_roles", where, query);
}

/**
 * Grants of several events or users at once (`include=users-events-roles`): of events, only
 * those on which `viewer` holds a role (admins: all), as `/events/{id}/users-events-roles` shows.
 */
export async function grantsOf(
  sql: Queryable,
  of: { eventIds: string[] } | { userIds: string[] },
  options: { viewer: { id: string | null; admin: boolean }; withTrashed?: boolean },
): Promise<GrantRow[]> {
  const { viewer, withTrashed = false } = options;
  const byEvent = "eventIds" in of;
  const valid = (byEvent ? of.eventIds : of.userIds).filter(isId);
  if (!valid.length) return [];
  // Of users: on live events only (any, `withTrashed`), as `/users/{id}/users-events-roles`.
  const mine = sql`exists (select 1
    from users_events_roles mine where mine.event_id = g.event_id and mine.user_id = ${viewer.id})`;
  const seen = !byEvent ? onLiveEvent(sql, withTrashed) : viewer.admin ? sql`true` : mine;
  return await sql<GrantRow[]>`select * from users_events_roles g
    where ${sql(byEvent ? "event_id" : "user_id")} in ${sql(valid)} and ${seen} order by id`;
}

/** A grant is unique per user, event and role: a duplicate is the role the user already has. */
const ROLE_POINTER = "/data/relationships/role";

export async function insertGrant(
  tx: Queryable,
  values: { user_id: string; event_id: string; role_name: string },
): Promise<GrantRow> {
  try {
    const [row] = await tx<GrantRow[]>`insert into users_events_roles ${
      tx(values, "user_id", "event_id", "role_name")
    } returning *`;
    return row;
  } catch (error) {
    throw translateDbError(error, {
      conflict: "Cannot grant role: the user already has it",
      pointer: ROLE_POINTER,
    });
  }
}

export async function updateGrant(
  tx: Queryable,
  id: string,
  roleName: string,
): Promise<GrantRow> {
  try {
    const [row] = await tx<GrantRow[]>`update users_events_roles set role_name = ${roleName}
      where id = ${id} returning *`;
    return row;
  } catch (error) {
    throw translateDbError(error, {
      conflict: "Cannot change role: the user already has it",
      pointer: ROLE_POINTER,
    });
  }
}

export async function deleteGrant(tx: Queryable, id: string): Promise<GrantRow | undefined> {
  const [row] = await tx<GrantRow[]>`delete from users_events_roles where id = ${id} returning *`;
  return row;
}

/** Locks event `eventId`'s row: changes of its owners' grants then wait for each other. */
export async function lockEventOwners(tx: Queryable, eventId: string): Promise<void> {
  await tx`select id from events where id = ${eventId} for update`;
}

/**
 * How many live owners an event has (the last one cannot be removed). A deleted user's grant
 * stays but manages nothing: counted, an owner who deleted their account let the other owner
 * revoke theirs and leave the event to nobody.
 */
export async function ownerCount(sql: Queryable, eventId: string): Promise<number> {
  const [row] = await sql`select count(*)::int as count from users_events_roles r
    join users u on u.id = r.user_id and u.deleted_at is null
    where r.event_id = ${eventId} and r.role_name = 'owner'`;
  return row.count;
}

/**
 * Points event `eventId`'s `owner` at its first live owner (the earliest owner grant of a user
 * who has not deleted their account), as the original derived an event's owner from its owner
 * role; returns the event when that moved it (its fact is owed). With no live owner left (a
 * trashed event whose only owner deleted their account) it stays who it was. Run it after any
 * change of an owner grant or of an owner's account: before, `owner` named the creator for good,
 * even after they had handed the event over and left.
 */
export async function followOwners(tx: Queryable, eventId: string): Promise<EventRow | undefined> {
  const [row] = await tx<EventRow[]>`update events e set owner_id = first.user_id
    from (select (select r.user_id from users_events_roles r
      join users u on u.id = r.user_id and u.deleted_at is null
      where r.event_id = ${eventId} and r.role_name = 'owner'
      order by r.id limit 1) as user_id) first
    where e.id = ${eventId} and first.user_id is not null
      and e.owner_id is distinct from first.user_id
    returning e.*`;
  return row;
}
