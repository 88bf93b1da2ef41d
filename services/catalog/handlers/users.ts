/** Users: sign-up is open, a user sees and changes only themselves (admins: everyone). */
import { ConflictError, ForbiddenError } from "@shared/errors.ts";
import type { Queryable } from "@shared/db.ts";
import {
  isAdmin,
  notFound,
  permanentDelete,
  renderList,
  requireAdmin,
  requireLogin,
  withTrashed,
} from "@shared/handlers/mod.ts";
import { parseResourceDocument, validateAttributes } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import { userCreateAttributes, userUpdateAttributes } from "@shared/schemas/catalog.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import { booleanFromText } from "@shared/schemas/lenient.ts";
import type { Caller, CatalogContext } from "../context.ts";
import type { z } from "zod";
import { hashPassword } from "../passwords.ts";
import {
  eventDef,
  eventQuery,
  roleOfList,
  USER_EVENT_LISTS,
  userDef,
  userQuery,
  usersEventsRoleDef,
  usersEventsRoleQuery,
} from "../resources.ts";
import type { Row, UserRow } from "../store/common.ts";
import { listEvents } from "../store/events.ts";
import { listGrants } from "../store/roles.ts";
import {
  deleteUser,
  eventsOnlyOwnedBy,
  getUser,
  insertUser,
  listUsers,
  lockForUserDelete,
  otherSuperAdmins,
  ownersFollowed,
  purgeUserDependents,
  updateUser,
  type UserValues,
} from "../store/users.ts";
import {
  type Call,
  cascade,
  commit,
  deleteWithFacts,
  handleAll,
  restores,
  viewer,
} from "./common.ts";
import {
  loadIncluded,
  renderLinkageShown,
  renderShown,
  renderWritten,
  userDefFor,
  writeQuery,
} from "./includes.ts";

/** The user named in the URL, if the caller is that user or an admin. */
async function ownUser(
  ctx: CatalogContext,
  call: Call,
): Promise<{ caller: Caller; user: UserRow }> {
  const caller = requireLogin(call.caller);
  const id = call.req.params.id;
  if (caller.id !== id && !isAdmin(caller)) {
    throw new ForbiddenError("Cannot continue: only the user themselves or an admin may do this");
  }
  const user = await getUser(ctx.sql, id, withTrashed(caller, call.req.query)) ??
    notFound("user", id);
  return { caller, user };
}

/** Only super admins change or delete a super admin (other than themselves). */
function guardSuperAdmin(caller: Caller, user: UserRow): void {
  if (user.is_super_admin && user.id !== caller.id && !caller.isSuperAdmin) {
    throw new ForbiddenError("Cannot change a super admin: only super admins may");
  }
}

/** Refuses a change that would leave no live super admin (nobody could manage admins). */
async function keepASuperAdmin(tx: Queryable, user: UserRow, losesFlag: boolean): Promise<void> {
  if (!user.is_super_admin || !losesFlag) return;
  if (await otherSuperAdmins(tx, user.id) === 0) {
    throw new ConflictError("Cannot continue: this is the last super admin");
  }
}

const ADMIN_FLAGS = ["is-admin", "is-super-admin"] as const;

/**
 * Refuses a change of the admin flags by anyone but a super admin. Clients such as Open Event
 * Frontend send every attribute back, so a flag sent with its current value (false for a new
 * user) is no change; an invalid value is left to validation (422). A flag is read as validation
 * will read it (`"true"`, `"1"`, `1`... are true, as the original's marshmallow took them): a
 * check of JSON booleans alone let anyone make themselves super admin with `"True"`.
 */
function requestedFlags(
  caller: Caller | null,
  attributes: Record<string, unknown>,
  current: Pick<UserRow, "is_admin" | "is_super_admin"> = {
    is_admin: false,
    is_super_admin: false,
  },
): string[] {
  const column = { "is-admin": "is_admin", "is-super-admin": "is_super_admin" } as const;
  const flags = ADMIN_FLAGS.filter((f) => {
    const value = booleanFromText(attributes[f]);
    return typeof value === "boolean" && value !== Boolean(current[column[f]]);
  });
  if (flags.length && !caller?.isSuperAdmin) {
    throw new ForbiddenError("Cannot change admin flags: only super admins may", {
      pointer: `/data/attributes/${flags[0]}`,
    });
  }
  return flags;
}

/** A user's related rows, and whether they show an admin the trash (`trashed`). */
async function relatedOf(ctx: CatalogContext, call: Call, user: UserRow, linkageOnly: boolean) {
  const all = { "page[size]": "0" };
  const list = call.req.params.rel;
  if (list in USER_EVENT_LISTS) {
    const query = parseListQuery(linkageOnly ? all : call.req.query, eventQuery);
    const role = roleOfList(list);
    const trashed = !linkageOnly && withTrashed(call.caller, query.extra);
    // A role this rebuild has not (`marketer-events`): checked as a list, and empty.
    const many = role === null ? { rows: [], count: 0 } : await listEvents(ctx.sql, query, {
      viewer: viewer(call.caller),
      scope: { userId: user.id, role },
      withTrashed: trashed,
    });
    return { def: eventDef, query, many, trashed };
  }
  const query = parseListQuery(linkageOnly ? all : call.req.query, usersEventsRoleQuery);
  const trashed = withTrashed(call.caller, call.req.query);
  const many = await listGrants(ctx.sql, query, { userId: user.id, withTrashed: trashed });
  return { def: usersEventsRoleDef, query, many, trashed };
}

async function list(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const query = parseListQuery(call.req.query, userQuery);
  const result = await listUsers(ctx.sql, query, withTrashed(call.caller, query.extra));
  const included = await loadIncluded(ctx, call.caller, "user", result.rows, query);
  return renderList(userDef, result, { req: call.req, query, included });
}

async function get(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  // Who may see the user comes first: a bad query from anyone else is the 401/403.
  const { user } = await ownUser(ctx, call);
  const query = parseSingleQuery(call.req.query, userQuery);
  return await renderShown(ctx, call.caller, userDef, user, query, { req: call.req });
}

async function create(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const query = await writeQuery(ctx, call, userDef);
  const doc = parseResourceDocument(call.req.body, { type: "user", known: userDef.relationships });
  requestedFlags(call.caller, doc.attributes);
  const attrs = validateAttributes(userCreateAttributes, doc.attributes);
  const values: UserValues = {
    email: attrs.email,
    password_hash: await hashPassword(attrs.password, ctx.config.passwordIterations),
    first_name: attrs["first-name"] ?? null,
    last_name: attrs["last-name"] ?? null,
    is_admin: attrs["is-admin"] ?? false,
    is_super_admin: attrs["is-super-admin"] ?? false,
  };
  // A sign-up is made by the new user themselves (unless an admin creates the account).
  const signedUp = (row: UserRow): Caller =>
    call.caller ?? { id: row.id, email: row.email, isAdmin: false, isSuperAdmin: false };
  const row = await commit(
    ctx,
    call,
    { type: "user", verb: "created", actor: signedUp },
    (tx) => insertUser(tx, values),
  );
  // A sign-up sees its own account in full, as it will once signed in.
  return await renderWritten(ctx, signedUp(row), userDef, row, query, {
    req: call.req,
    status: 201,
  });
}

/** The columns a PATCH sets: only the attributes it sends (a new password is hashed). */
async function updatedValues(
  ctx: CatalogContext,
  attrs: z.infer<typeof userUpdateAttributes>,
): Promise<UserValues> {
  const values: UserValues = {};
  if (attrs.email !== undefined) values.email = attrs.email;
  if (attrs.password !== undefined) {
    values.password_hash = await hashPassword(attrs.password, ctx.config.passwordIterations);
  }
  if (attrs["first-name"] !== undefined) values.first_name = attrs["first-name"];
  if (attrs["last-name"] !== undefined) values.last_name = attrs["last-name"];
  if (attrs["is-admin"] !== undefined) values.is_admin = attrs["is-admin"];
  if (attrs["is-super-admin"] !== undefined) values.is_super_admin = attrs["is-super-admin"];
  return values;
}

/**
 * Relationships a PATCH may carry and that change nothing here: another service owns them (a
 * user's codes change through the codes). open-event-frontend's user model has `discountCodes`
 * without an inverse, which Ember sends back on every save once it loaded them; the original
 * took them (a 422 here until 2026-12-03: a review).
 */
const readBackRelationships = {
  "discount-codes": { type: "discount-code", many: true },
};

/**
 * What an admin's restore sets (handlers/common.ts `restores`): only `deleted_at`, and only if the
 * user is still trashed under the row's lock (a concurrent restore came first: nothing more to
 * do). What the deletion took along stays as it left it: the events that moved to another owner.
 */
function restored(restoring: boolean, locked: Row | undefined): UserValues {
  return restoring && (locked as UserRow).deleted_at !== null ? { deleted_at: null } : {};
}

async function update(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { caller, user } = await ownUser(ctx, call);
  guardSuperAdmin(caller, user);
  const query = await writeQuery(ctx, call, userDef);
  const doc = parseResourceDocument(call.req.body, {
    type: "user",
    id: call.req.params.id,
    relationships: readBackRelationships,
    known: userDef.relationships,
  });
  requestedFlags(caller, doc.attributes, user);
  const attrs = validateAttributes(userUpdateAttributes, doc.attributes);
  const values = await updatedValues(ctx, attrs);
  const restoring = restores(caller, user, doc.attributes);
  const row = await commit(
    ctx,
    call,
    {
      type: "user",
      verb: "updated",
      update: { table: "users", id: user.id, foundLive: user.deleted_at === null },
    },
    async (tx, locked) => {
      await keepASuperAdmin(tx, user, values.is_super_admin === false);
      return await updateUser(tx, user.id, { ...values, ...restored(restoring, locked) });
    },
  );
  return await renderWritten(ctx, caller, userDef, row, query, { req: call.req });
}

async function remove(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { caller, user } = await ownUser(ctx, call);
  guardSuperAdmin(caller, user);
  if (permanentDelete(call.caller, call.req.query)) {
    // Their roles go with them and their events show their next live owner (none left: null),
    // each with its fact.
    return await deleteWithFacts(
      ctx,
      call,
      { type: "user", row: user, purged: true },
      async (tx) => {
        await mayBeDeleted(tx, user);
        const { grants, events } = await purgeUserDependents(tx, user.id);
        const row = await deleteUser(tx, user.id, true);
        const cascaded = [
          ...cascade("users-events-role", "deleted", grants),
          ...cascade("event", "updated", events, { changed: ["owner"] }),
        ];
        return { row, cascaded };
      },
    );
  }
  // Their grants stay, as their history; the events they were the owner of now show their next
  // live owner, each with its fact.
  return await deleteWithFacts(
    ctx,
    call,
    { type: "user", row: user, purged: false },
    async (tx) => {
      await mayBeDeleted(tx, user);
      const row = await deleteUser(tx, user.id, false);
      const events = await ownersFollowed(tx, user.id);
      return { row, cascaded: cascade("event", "updated", events, { changed: ["owner"] }) };
    },
  );
}

/** Refuses to delete the last super admin, or the only owner of an event (locked first). */
async function mayBeDeleted(tx: Queryable, user: UserRow): Promise<void> {
  await lockForUserDelete(tx, user.id);
  await keepASuperAdmin(tx, user, true);
  const owned = await eventsOnlyOwnedBy(tx, user.id);
  if (owned.length) {
    throw new ConflictError(
      `Cannot delete user: they are the only owner of event ${owned.join(", ")}; ` +
        "give those events another owner first",
    );
  }
}

async function related(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { user } = await ownUser(ctx, call);
  const found = await relatedOf(ctx, call, user, false);
  const { def, many, query } = found;
  const included = await loadIncluded(ctx, call.caller, def.type, many.rows, query);
  return renderList(def, many, { req: call.req, query, included });
}

async function relationship(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { user } = await ownUser(ctx, call);
  const found = await relatedOf(ctx, call, user, true);
  const parent = { def: userDefFor(call.caller, user), row: user };
  const related = { def: found.def, rows: found.many.rows, trashed: found.trashed };
  return await renderLinkageShown(ctx, call.caller, parent, related, call.req);
}

export function userHandlers(ctx: CatalogContext) {
  return {
    ...handleAll(ctx, {
      "users.list": list,
      "users.get": get,
      "users.create": create,
      "users.update": update,
      "users.delete": remove,
      "users.related": related,
      "users.relationship": relationship,
    }),
  };
}
