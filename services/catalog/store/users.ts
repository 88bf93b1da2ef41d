/** All SQL about users and their event roles. */
import { isId } from "@shared/schemas/ids.ts";
import type { Actor } from "@shared/schemas/http.ts";
import type { Queryable } from "@shared/db.ts";
import { advisoryXactLock, translateDbError } from "@shared/db.ts";
import type { ListQuery } from "@shared/query.ts";
import { followOwners } from "./roles.ts";
import { deleteRow, listRows, liveRows } from "./common.ts";
import type { EventRow, GrantRow, UserRow } from "./rows.ts";

/** The logged-in user as access checks see it (context.ts re-exports it for handlers). */
export interface Caller {
  id: string;
  email: string;
  isAdmin: boolean;
  isSuperAdmin: boolean;
}

/** As the original answered a taken email: a 409 pointing at it. */
const emailTaken = {
  conflict: "Cannot save user: the email address is already registered",
  pointer: "/data/attributes/email",
};

/** A restore whose email a live user took meanwhile (the original refused it too, with a 403). */
const emailTakenOnRestore = {
  conflict: "Cannot restore user: another user has registered the email address since; " +
    "send a new email with the restore",
  pointer: "/data/attributes/email",
};

/**
 * The live user a token names, if the token is of their current version (none: version 0); a
 * token issued before their password last changed finds nobody.
 */
export async function findCaller(sql: Queryable, actor: Actor): Promise<Caller | null> {
  if (!isId(actor.id)) return null;
  const [row] = await sql`select id, email, is_admin, is_super_admin from users
    where id = ${actor.id} and deleted_at is null
      and token_version = ${actor.tokenVersion ?? 0}`;
  return row ? callerOf(row) : null;
}

/** The caller in a row of `id, email, is_admin, is_super_admin` (as findCaller selects them). */
export function callerOf(row: Record<string, unknown>): Caller {
  return {
    id: String(row.id),
    email: row.email as string,
    isAdmin: row.is_admin as boolean,
    isSuperAdmin: row.is_super_admin as boolean,
  };
}

export async function rolesOnEvent(
  sql: Queryable,
  userId: string,
  eventId: string,
): Promise<string[]> {
  if (!isId(userId) || !isId(eventId)) return [];
  const rows = await sql`select role_name from users_events_roles
    where user_id = ${userId} and event_id = ${eventId}`;
  return rows.map((r) => r.role_name);
}

export async function findUserForLogin(
  sql: Queryable,
  email: string,
): Promise<UserRow | undefined> {
  // The whole user: the logged-in fact carries its public payload.
  const [row] = await sql<
    UserRow[]
  >`select id, email, password_hash, first_name, last_name, is_admin,
    is_super_admin, token_version, last_accessed_at, created_at, deleted_at from users
    where lower(email) = lower(${email}) and deleted_at is null`;
  return row;
}

/**
 * Stamps a login on `user` (`last-accessed-at`) as its password was checked: undefined when the
 * user was deleted since, or their password changed (its token version counted up), so that a
 * login racing such a change neither counts nor gets a token.
 */
export async function recordLogin(
  tx: Queryable,
  user: Pick<UserRow, "id" | "token_version">,
): Promise<UserRow | undefined> {
  const [row] = await tx<UserRow[]>`update users set last_accessed_at = now()
    where id = ${user.id} and deleted_at is null and token_version = ${user.token_version}
    returning *`;
  return row;
}

export async function getUser(
  sql: Queryable,
  id: string,
  withTrashed = false,
): Promise<UserRow | undefined> {
  if (!isId(id)) return undefined;
  const [row] = await sql<UserRow[]>`select * from users where id = ${id} and ${
    liveRows(sql, "users", withTrashed)
  }`;
  return row;
}

export async function getUsers(
  sql: Queryable,
  ids: string[],
  { withTrashed = false }: { withTrashed?: boolean } = {},
): Promise<UserRow[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  return await sql<UserRow[]>`select * from users where id in ${sql(valid)}
    and ${liveRows(sql, "users", withTrashed)}`;
}

export function listUsers(sql: Queryable, query: ListQuery, withTrashed: boolean) {
  return listRows<UserRow>(sql, "users", liveRows(sql, "users", withTrashed), query);
}

export interface UserValues {
  email?: string;
  password_hash?: string;
  first_name?: string | null;
  last_name?: string | null;
  is_admin?: boolean;
  is_super_admin?: boolean;
  /** Only ever null: an admin restores a soft-deleted user (handlers/common.ts `restores`). */
  deleted_at?: null;
}

/**
 * The token version a new account starts at: random, not 0, so that a token is tied to the account
 * it was issued for, not only to its id. Were an id handed out again (a catalog restored from a
 * backup together with a lost fact stream, where shared/announced_ids.ts cannot move the sequence
 * past it), a lost account's token, id and version 0, signed in as the new account (a restore
 * review, 2026-12-06); now it matches one time in 2^30. At most 2^30, so the version counts up for
 * as many changes again before the column (an `integer`) would overflow.
 */
export function firstTokenVersion(): number {
  return (crypto.getRandomValues(new Uint32Array(1))[0] & 0x3fffffff) + 1;
}

export async function insertUser(tx: Queryable, values: UserValues): Promise<UserRow> {
  const row = { ...values, token_version: firstTokenVersion() };
  try {
    const [inserted] = await tx<UserRow[]>`insert into users ${
      tx(row, ...Object.keys(row) as (keyof typeof row)[])
    } returning *`;
    return inserted;
  } catch (error) {
    throw translateDbError(error, emailTaken);
  }
}

export async function updateUser(
  tx: Queryable,
  id: string,
  values: UserValues,
): Promise<UserRow> {
  const keys = Object.keys(values) as (keyof UserValues)[];
  // Nothing to set: the row as it is, trashed or not (a PATCH of a trashed user that changes
  // nothing read it as missing, and its fact had no data: a 500).
  if (!keys.length) return (await getUser(tx, id, true))!;
  // A password set (even to the same one) ends every token issued before it. So does a restore:
  // the soft delete left the token version as it was, and the tokens issued before it would
  // have worked again (none can be issued while the user is deleted).
  const restoring = values.deleted_at === null;
  const revoke = values.password_hash === undefined && !restoring
    ? tx``
    : tx`, token_version = token_version + 1`;
  try {
    const [row] = await tx<UserRow[]>`update users set ${
      tx(values, ...keys)
    } ${revoke} where id = ${id} returning *`;
    return row;
  } catch (error) {
    throw translateDbError(error, restoring ? emailTakenOnRestore : emailTaken);
  }
}

export function deleteUser(tx: Queryable, id: string, permanent: boolean) {
  return deleteRow<UserRow>(tx, "users", id, permanent);
}

/**
 * Locks what deleting user `id` changes, in the order changes of owners' grants lock it: the
 * events they hold a role on or own (by id), then the user. The last-owner check and the deletes
 * that follow then neither race a role's change (a purge and a revocation at once left an event
 * with no owner) nor deadlock with one (grant, then event, against event, then grant: a 500); an
 * event created by them or a role granted to them meanwhile waits, then fails (`lockLiveUser`).
 */
/**
 * Holds user `id`'s row for the transaction if the account is live; false if it is deleted or
 * unknown. A write that makes them an event's owner or gives them a role takes it, so that their
 * account's deletion waits for the write (and then counts what it made), or came first and the
 * write sees it. The row's foreign keys did not do this: a soft delete leaves the row, and an
 * event created or a role granted while its user's deletion committed outlived them (a review).
 */
export async function lockLiveUser(tx: Queryable, id: string): Promise<boolean> {
  // `key share` is enough against a deletion, which locks the row `for update` first
  // (`lockForUserDelete`), and waits for none of the user's other changes (a login's stamp).
  const rows = await tx`select id from users where id = ${id} and deleted_at is null
    for key share`;
  return rows.length > 0;
}

export async function lockForUserDelete(tx: Queryable, id: string): Promise<void> {
  await tx`select id from events
    where owner_id = ${id} or id in (select event_id from users_events_roles where user_id = ${id})
    order by id for update`;
  await tx`select id from users where id = ${id} for update`;
}

/**
 * Before a permanent delete of user `id`: deletes their roles and clears them as the owner of
 * events, as the schema's cascades would (silently), and returns those rows, so that each change
 * has its fact. Run it after `lockForUserDelete`.
 */
export async function purgeUserDependents(
  tx: Queryable,
  id: string,
): Promise<{ grants: GrantRow[]; events: EventRow[] }> {
  const grants = await tx<GrantRow[]>`delete from users_events_roles
    where user_id = ${id} returning *`;
  const moved = await ownersFollowed(tx, id);
  // Events with no other live owner (trashed ones: a live one refused the purge) lose theirs.
  const cleared = await tx<EventRow[]>`update events set owner_id = null
    where owner_id = ${id} returning *`;
  return { grants, events: [...moved, ...cleared] };
}

/**
 * The events user `id` was the owner of that have another live owner, each pointed at it once
 * their account is deleted or purged (`followOwners`), as they now are.
 */
export async function ownersFollowed(tx: Queryable, id: string): Promise<EventRow[]> {
  const owned = await tx<{ id: string }[]>`select id from events where owner_id = ${id}`;
  const moved: EventRow[] = [];
  for (const { id: eventId } of owned) {
    const row = await followOwners(tx, String(eventId));
    if (row) moved.push(row);
  }
  return moved;
}

/**
 * Creates or updates the configured super admin; returns the row (and the one it updated),
 * whether it is new and whether it changed. A live super admin whose password `admin.matches`
 * keeps it (and its tokens: a restart, or another instance starting, logs nobody out); any other
 * account with the email gets the new password and the flags, and every token issued before dies
 * (it may have been someone else's account, signed up before the operator chose its email).
 */
export async function upsertAdmin(
  tx: Queryable,
  email: string,
  admin: { passwordHash: string; matches: (storedHash: string) => Promise<boolean> },
): Promise<{ row: UserRow; before?: UserRow; created: boolean; changed: boolean }> {
  const [found] = await tx<UserRow[]>`select * from users
    where lower(email) = lower(${email}) and deleted_at is null for update`;
  if (found?.is_super_admin && await admin.matches(found.password_hash)) {
    const [row] = await tx<UserRow[]>`update users set is_admin = true
      where id = ${found.id} returning *`;
    return { row, before: found, created: false, changed: !found.is_admin };
  }
  if (found) {
    const [row] = await tx<UserRow[]>`update users set password_hash = ${admin.passwordHash},
      is_admin = true, is_super_admin = true, token_version = token_version + 1
      where id = ${found.id} returning *`;
    return { row, before: found, created: false, changed: true };
  }
  const row = await insertUser(tx, {
    email,
    password_hash: admin.passwordHash,
    is_admin: true,
    is_super_admin: true,
  });
  return { row, created: true, changed: true };
}

/**
 * Serializes the making of the first admin until the transaction ends: instances of the catalog
 * started together each make it at start, and without the lock two found no account, both
 * inserted one, and the second stopped at start on the taken email (or, with a generated
 * password, replaced the one the first had just shown).
 */
export async function lockFirstAdmin(tx: Queryable): Promise<void> {
  await advisoryXactLock(tx, "catalog:first-admin");
}

export async function anyAdmin(sql: Queryable): Promise<boolean> {
  const [row] = await sql`select exists (select 1 from users
    where is_super_admin and deleted_at is null) as found`;
  return row.found;
}

/**
 * Live super admins other than `id`, counted under one lock every demotion or deletion of a super
 * admin takes until its transaction ends, so no two may race past the last one. It used to lock
 * the other super admins' rows instead (`for update`), each change having locked its own target
 * first: two super admins demoting (or deleting) each other, or one demoting two others at once,
 * deadlocked, and one answered 500.
 */
export async function otherSuperAdmins(tx: Queryable, id: string): Promise<number> {
  await advisoryXactLock(tx, "catalog:super-admins");
  const [row] = await tx`select count(*)::int as count from users
    where is_super_admin and deleted_at is null and id <> ${id}`;
  return row.count;
}

/**
 * Live events whose only live owner is `userId` (they would be left without one). Owners who
 * deleted their accounts do not count: each of two owners could otherwise delete theirs in turn.
 */
export async function eventsOnlyOwnedBy(tx: Queryable, userId: string): Promise<string[]> {
  const rows = await tx`select e.id from events e
    join users_events_roles r on r.event_id = e.id and r.role_name = 'owner'
    join users u on u.id = r.user_id and u.deleted_at is null
    where e.deleted_at is null
    group by e.id having bool_and(r.user_id = ${userId}) order by e.id`;
  return rows.map((row) => String(row.id));
}
