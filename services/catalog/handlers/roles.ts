/**
 * Roles and event role grants (`users-events-role`): organizers grant and revoke roles on their
 * event; only owners (or admins) make more owners; an event never loses its last owner.
 */
import { ConflictError, ForbiddenError, UnprocessableError } from "@shared/errors.ts";
import {
  notFound,
  renderList,
  renderOne,
  requireLogin,
  withTrashed,
} from "@shared/handlers/mod.ts";
import { type ParsedResource, parseResourceDocument } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import type { Queryable } from "@shared/db.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import {
  type Caller,
  type CatalogContext,
  hasEventLevel,
  levels,
  requireEventLevel,
} from "../context.ts";
import {
  eventDef,
  publicUserDef,
  roleDef,
  roleQuery,
  usersEventsRoleDef,
  usersEventsRoleQuery,
} from "../resources.ts";
import type { EventRow, GrantRow, UserRow } from "../store/common.ts";
import { getEvent } from "../store/events.ts";
import {
  deleteGrant,
  followOwners,
  getGrant,
  getRole,
  insertGrant,
  listRoles,
  lockEventOwners,
  ownerCount,
  updateGrant,
} from "../store/roles.ts";
import { getUser, lockLiveUser } from "../store/users.ts";
import {
  type Call,
  cascade,
  type Cascaded,
  commitWithCascade,
  deleteWithFacts,
  handleAll,
  viewer,
} from "./common.ts";
import { renderRelatedOne } from "./related.ts";
import { renderLinkageShown, renderShown, renderWritten, userDefFor } from "./includes.ts";

const grantRelationships = {
  user: { type: "user" },
  event: { type: "event" },
  role: { type: "role" },
};

function toOne(doc: ParsedResource, name: string, required: boolean): string | undefined {
  const ref = doc.relationships[name];
  if (ref === undefined && !required) return undefined;
  if (!ref || Array.isArray(ref)) {
    throw new UnprocessableError(`Cannot save event role: ${name} is required`, {
      pointer: `/data/relationships/${name}`,
    });
  }
  return ref.id;
}

async function roleOr422(ctx: CatalogContext, name: string): Promise<string> {
  const role = await getRole(ctx.sql, name);
  if (!role) {
    throw new UnprocessableError("Cannot save event role: the role does not exist", {
      pointer: "/data/relationships/role",
    });
  }
  return String(role.name);
}

/** Organizers manage roles; making (or unmaking) an owner needs an owner or admin. */
async function requireGrantor(ctx: CatalogContext, call: Call, eventId: string, role: string) {
  const caller = await requireEventLevel(ctx.sql, call.caller, eventId, "organizer");
  if (role === "owner" && !await hasEventLevel(ctx.sql, caller, eventId, ["owner"])) {
    throw new ForbiddenError("Cannot change owners: only an owner or an admin may");
  }
  return caller;
}

/** A grant is visible to the event's co-organizers and to the user it names. */
async function grantOr404(ctx: CatalogContext, call: Call): Promise<GrantRow> {
  const caller: Caller = requireLogin(call.caller);
  const grant = await getGrant(ctx.sql, call.req.params.id, {
    withTrashed: withTrashed(caller, call.req.query),
  }) ?? notFound("event role", call.req.params.id);
  const self = grant.user_id === caller.id;
  if (self || await hasEventLevel(ctx.sql, caller, grant.event_id, levels.coorganizer)) {
    return grant;
  }
  // A role on an event the caller may not see (a draft) is not found, as the event is not: a 403
  // would tell a probe that the id exists.
  if (!await getEvent(ctx.sql, grant.event_id, { viewer: viewer(caller) })) {
    notFound("event role", call.req.params.id);
  }
  throw new ForbiddenError("Cannot continue: only the event's co-organizers may see its roles");
}

/**
 * The grant's user, event or role. Its user or event in the trash too for an admin asking (who
 * reaches a grant on a trashed event so; a deleted user's grants stay, as their history).
 */
async function relatedOf(ctx: CatalogContext, call: Call, grant: GrantRow) {
  const trashed = withTrashed(call.caller, call.req.query);
  switch (call.req.params.rel) {
    case "user": {
      const user = await getUser(ctx.sql, grant.user_id, trashed);
      return { def: user ? userDefFor(call.caller, user) : publicUserDef, row: user ?? null };
    }
    case "event": {
      const seen = { viewer: viewer(call.caller), withTrashed: trashed };
      return { def: eventDef, row: await getEvent(ctx.sql, grant.event_id, seen) ?? null };
    }
    default:
      return { def: roleDef, row: await getRole(ctx.sql, grant.role_name) ?? null };
  }
}

async function listRolesAction(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const query = parseListQuery(call.req.query, roleQuery);
  return renderList(roleDef, await listRoles(ctx.sql, query), { req: call.req, query });
}

async function getRoleAction(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  parseSingleQuery(call.req.query, roleQuery);
  const role = await getRole(ctx.sql, call.req.params.id) ?? notFound("role", call.req.params.id);
  return renderOne(roleDef, role, { req: call.req });
}

function unprocessable(detail: string, pointer: string): never {
  throw new UnprocessableError(`Cannot save event role: ${detail}`, { pointer });
}

/**
 * A grant's PATCH may send back its own `user` and `event` (ember-data sends every relationship
 * it read, as for a ticket's event); another user or event is a 422 pointing at it: a grant never
 * moves. Until 2026-12-05 any of them was a 422, the grant's own too.
 */
async function requireSameParties(
  ctx: CatalogContext,
  call: Call,
  grant: GrantRow,
  doc: ParsedResource,
): Promise<void> {
  const user = toOne(doc, "user", false);
  if (user !== undefined && user !== String(grant.user_id)) {
    unprocessable("a grant's user never changes", "/data/relationships/user");
  }
  const event = toOne(doc, "event", false);
  if (event === undefined || event === String(grant.event_id)) return;
  // Named by its identifier, as on POST.
  const named = await getEvent(ctx.sql, event, { viewer: viewer(call.caller) });
  if (named?.id === undefined || String(named.id) !== String(grant.event_id)) {
    unprocessable("a grant's event never changes", "/data/relationships/event");
  }
}

/** The event and user a new grant names; 422 when either does not exist. */
async function grantParties(
  ctx: CatalogContext,
  call: Call,
  doc: ParsedResource,
): Promise<{ event: EventRow; role: string; user: UserRow }> {
  const event = await getEvent(ctx.sql, toOne(doc, "event", true)!, {
    viewer: viewer(call.caller),
  });
  if (!event) unprocessable("the event does not exist", "/data/relationships/event");
  const role = await roleOr422(ctx, toOne(doc, "role", true)!);
  await requireGrantor(ctx, call, event.id, role);
  const user = await getUser(ctx.sql, toOne(doc, "user", true)!);
  if (!user) userUnknown();
  return { event, role, user };
}

function userUnknown(): never {
  unprocessable("the user does not exist", "/data/relationships/user");
}

async function createGrant(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  // Anonymous callers learn nothing about which events exist.
  requireLogin(call.caller);
  const query = parseSingleQuery(call.req.query, usersEventsRoleQuery);
  const doc = parseResourceDocument(call.req.body, {
    type: "users-events-role",
    relationships: grantRelationships,
    known: usersEventsRoleDef.relationships,
  });
  const { event, role, user } = await grantParties(ctx, call, doc);
  const { row, cascaded } = await commitWithCascade(
    ctx,
    call,
    { type: "users-events-role", verb: "created" },
    async (tx) => {
      // The event first, as a deletion of the user locks it (they may hold a role on it already).
      await lockEventOwners(tx, event.id);
      if (!await lockLiveUser(tx, user.id)) userUnknown();
      const row = await insertGrant(tx, { user_id: user.id, event_id: event.id, role_name: role });
      return { row, cascaded: role === "owner" ? await ownerFollowed(tx, event.id) : [] };
    },
  );
  const shown = await renderWritten(ctx, call.caller, usersEventsRoleDef, row, query, {
    req: call.req,
    status: 201,
  });
  return { ...shown, cascaded };
}

async function getGrantAction(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  // Who may see the grant comes first: a bad query from anyone else is the 401/403/404.
  const grant = await grantOr404(ctx, call);
  const query = parseSingleQuery(call.req.query, usersEventsRoleQuery);
  return await renderShown(ctx, call.caller, usersEventsRoleDef, grant, query, { req: call.req });
}

async function updateGrantAction(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const grant = await grantOr404(ctx, call);
  const query = parseSingleQuery(call.req.query, usersEventsRoleQuery);
  const doc = parseResourceDocument(call.req.body, {
    type: "users-events-role",
    id: call.req.params.id,
    relationships: grantRelationships,
    known: usersEventsRoleDef.relationships,
  });
  await requireSameParties(ctx, call, grant, doc);
  const roleName = toOne(doc, "role", false);
  const shown = (row: typeof grant) =>
    renderWritten(ctx, call.caller, usersEventsRoleDef, row, query, { req: call.req });
  if (roleName === undefined) return await shown(grant);
  const role = await roleOr422(ctx, roleName);
  await requireGrantor(ctx, call, grant.event_id, role === "owner" ? role : grant.role_name);
  const { row, cascaded } = await commitWithCascade(
    ctx,
    call,
    {
      type: "users-events-role",
      verb: "updated",
      row: grant,
      update: { table: "users_events_roles", id: grant.id },
      // The event before the grant, as a revocation and a purge lock them: the other way round,
      // a PATCH and its holder's leave at once deadlocked (one answered 503).
      lockFirst: (tx) => lockEventOwners(tx, grant.event_id),
    },
    async (tx) => {
      const row = await keepingAnOwner(
        tx,
        grant,
        "Cannot change role: the event would have no owner left",
        () => updateGrant(tx, grant.id, role),
      );
      return { row, cascaded: await ownerFollowed(tx, grant.event_id) };
    },
  );
  return { ...await shown(row as GrantRow), cascaded };
}

/**
 * The event's fact owed when a grant change moved the event's `owner` to another owner
 * (`followOwners`). Checked after every change and revocation of an existing grant, whatever its
 * role: that role was read before the transaction, and another request may have made it an
 * owner's meanwhile (a review); only a new grant's role is known to be current.
 */
async function ownerFollowed(tx: Queryable, eventId: string): Promise<Cascaded[]> {
  const moved = await followOwners(tx, eventId);
  return moved ? cascade("event", "updated", [moved], { changed: ["owner"] }) : [];
}

/**
 * Runs `change` of a grant with the event's owners locked, and refuses (409, nothing changed)
 * when it would leave the event without an owner. Counted before the change, outside the
 * transaction, two owners revoking each other at once could both pass and leave none. Done for
 * every grant, not only one read as an owner's: the role was read before the transaction, and a
 * user leaving a grant another request had just made an owner's went unchecked, leaving the
 * event with no owner (a review). An event that had no owner already is not refused for that.
 */
async function keepingAnOwner<T>(
  tx: Queryable,
  grant: GrantRow,
  refusal: string,
  change: () => Promise<T>,
): Promise<T> {
  await lockEventOwners(tx, grant.event_id);
  const before = await ownerCount(tx, grant.event_id);
  const result = await change();
  if (before > 0 && await ownerCount(tx, grant.event_id) === 0) throw new ConflictError(refusal);
  return result;
}

async function deleteGrantAction(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const grant = await grantOr404(ctx, call);
  // Anyone may leave a role given to them: grants need no consent, so without it a user made a
  // coorganizer of an event they want nothing to do with stayed one (a security review). The last
  // owner still may not leave (409 below): they may delete the event.
  if (grant.user_id !== requireLogin(call.caller).id) {
    await requireGrantor(ctx, call, grant.event_id, grant.role_name);
  }
  // Roles have no trash: a revocation is for good.
  return await deleteWithFacts(
    ctx,
    call,
    { type: "users-events-role", row: grant, purged: true },
    async (tx) => {
      const row = await keepingAnOwner(
        tx,
        grant,
        "Cannot revoke role: the event would have no owner left",
        () => deleteGrant(tx, grant.id),
      );
      return { row, cascaded: await ownerFollowed(tx, grant.event_id) };
    },
  );
}

async function grantRelated(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const grant = await grantOr404(ctx, call);
  const { def, row } = await relatedOf(ctx, call, grant);
  return await renderRelatedOne(ctx, call, def, row);
}

async function grantRelationship(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const grant = await grantOr404(ctx, call);
  const { def, row } = await relatedOf(ctx, call, grant);
  const parent = { def: usersEventsRoleDef, row: grant };
  const related = { def, rows: row, trashed: withTrashed(call.caller, call.req.query) };
  return await renderLinkageShown(ctx, call.caller, parent, related, call.req);
}

export function roleHandlers(ctx: CatalogContext) {
  return handleAll(ctx, {
    "roles.list": listRolesAction,
    "roles.get": getRoleAction,
    "users-events-roles.create": createGrant,
    "users-events-roles.get": getGrantAction,
    "users-events-roles.update": updateGrantAction,
    "users-events-roles.delete": deleteGrantAction,
    "users-events-roles.related": grantRelated,
    "users-events-roles.relationship": grantRelationship,
  });
}
