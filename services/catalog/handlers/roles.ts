/**
 * Roles and event role grants (`users-events-role`): organizers grant and revoke roles on their
 * event; only owners (or admins) make more owners; an event never loses its last owner.
 */
import { type Route, route } from "@shared/bus.ts";
import { ConflictError, ForbiddenError, UnprocessableError } from "@shared/errors.ts";
import {
  deletedReply,
  type ParsedResource,
  parseResourceDocument,
  renderEmpty,
} from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import { catalog } from "@shared/subjects.ts";
import {
  type Caller,
  type CatalogContext,
  hasEventLevel,
  levels,
  requireEventLevel,
  requireLogin,
} from "../context.ts";
import {
  eventDef,
  publicUserDef,
  roleDef,
  roleQuery,
  usersEventsRoleDef,
  usersEventsRoleQuery,
} from "../resources.ts";
import type { Row } from "../store/common.ts";
import { getEvent } from "../store/events.ts";
import {
  deleteGrant,
  getGrant,
  getRole,
  insertGrant,
  listRoles,
  ownerCount,
  updateGrant,
} from "../store/roles.ts";
import { getUser } from "../store/users.ts";
import {
  type Call,
  commit,
  handle,
  notFound,
  renderLinkage,
  renderList,
  renderOne,
  viewer,
} from "./common.ts";
import { loadIncluded, userDefFor } from "./includes.ts";

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
async function grantOr404(ctx: CatalogContext, call: Call): Promise<Row> {
  const caller: Caller = requireLogin(call.caller);
  const grant = await getGrant(ctx.sql, call.req.params.id) ??
    notFound("event role", call.req.params.id);
  const self = String(grant.user_id) === caller.id;
  if (!self && !await hasEventLevel(ctx.sql, caller, String(grant.event_id), levels.coorganizer)) {
    throw new ForbiddenError("Cannot continue: only the event's co-organizers may see its roles");
  }
  return grant;
}

async function relatedOf(ctx: CatalogContext, call: Call, grant: Row) {
  switch (call.req.params.rel) {
    case "user": {
      const user = await getUser(ctx.sql, String(grant.user_id));
      return { def: user ? userDefFor(call.caller, user) : publicUserDef, row: user ?? null };
    }
    case "event":
      return {
        def: eventDef,
        row: await getEvent(ctx.sql, String(grant.event_id), { viewer: viewer(call.caller) }) ??
          null,
      };
    default:
      return { def: roleDef, row: await getRole(ctx.sql, String(grant.role_name)) ?? null };
  }
}

export function roleRoutes(ctx: CatalogContext): Route[] {
  const r = catalog.roles;
  const g = catalog.usersEventsRoles;
  return [
    route(
      r.list,
      handle(ctx, async (call) => {
        const query = parseListQuery(call.req.query, roleQuery);
        return renderList(roleDef, await listRoles(ctx.sql, query), call.req, query);
      }),
    ),
    route(
      r.get,
      handle(ctx, async (call) => {
        parseSingleQuery(call.req.query, roleQuery);
        const role = await getRole(ctx.sql, call.req.params.id) ??
          notFound("role", call.req.params.id);
        return renderOne(roleDef, role, call.req);
      }),
    ),

    route(
      g.create,
      handle(ctx, async (call) => {
        // Anonymous callers learn nothing about which events exist.
        requireLogin(call.caller);
        const doc = parseResourceDocument(call.req.body, {
          type: "users-events-role",
          relationships: grantRelationships,
        });
        const eventKey = toOne(doc, "event", true)!;
        const event = await getEvent(ctx.sql, eventKey, { viewer: viewer(call.caller) });
        if (!event) {
          throw new UnprocessableError("Cannot save event role: the event does not exist", {
            pointer: "/data/relationships/event",
          });
        }
        const role = await roleOr422(ctx, toOne(doc, "role", true)!);
        await requireGrantor(ctx, call, String(event.id), role);
        const user = await getUser(ctx.sql, toOne(doc, "user", true)!);
        if (!user) {
          throw new UnprocessableError("Cannot save event role: the user does not exist", {
            pointer: "/data/relationships/user",
          });
        }
        const row = await commit(
          ctx,
          call,
          { type: "users-events-role", verb: "created" },
          (tx) =>
            insertGrant(tx, {
              user_id: String(user.id),
              event_id: String(event.id),
              role_name: role,
            }),
        );
        return renderOne(usersEventsRoleDef, row, call.req, { status: 201 });
      }),
    ),
    route(
      g.get,
      handle(ctx, async (call) => {
        const query = parseSingleQuery(call.req.query, usersEventsRoleQuery);
        const grant = await grantOr404(ctx, call);
        const included = await loadIncluded(ctx, call.caller, "users-events-role", [grant], query);
        return renderOne(usersEventsRoleDef, grant, call.req, { included, fields: query.fields });
      }),
    ),
    route(
      g.update,
      handle(ctx, async (call) => {
        const grant = await grantOr404(ctx, call);
        const doc = parseResourceDocument(call.req.body, {
          type: "users-events-role",
          id: call.req.params.id,
          relationships: { role: { type: "role" } },
        });
        const eventId = String(grant.event_id);
        const roleName = toOne(doc, "role", false);
        if (roleName === undefined) return renderOne(usersEventsRoleDef, grant, call.req);
        const role = await roleOr422(ctx, roleName);
        await requireGrantor(ctx, call, eventId, role === "owner" ? role : String(grant.role_name));
        if (
          grant.role_name === "owner" && role !== "owner" && await ownerCount(ctx.sql, eventId) < 2
        ) {
          throw new ConflictError("Cannot change role: the event would have no owner left");
        }
        const row = await commit(
          ctx,
          call,
          { type: "users-events-role", verb: "updated", before: grant },
          (tx) => updateGrant(tx, String(grant.id), role),
        );
        return renderOne(usersEventsRoleDef, row, call.req);
      }),
    ),
    route(
      g.delete,
      handle(ctx, async (call) => {
        const grant = await grantOr404(ctx, call);
        const eventId = String(grant.event_id);
        await requireGrantor(ctx, call, eventId, String(grant.role_name));
        if (grant.role_name === "owner" && await ownerCount(ctx.sql, eventId) < 2) {
          throw new ConflictError("Cannot revoke role: the event would have no owner left");
        }
        await commit(
          ctx,
          call,
          { type: "users-events-role", verb: "deleted", row: grant },
          (tx) => deleteGrant(tx, String(grant.id)),
        );
        return deletedReply;
      }),
    ),
    route(
      g.related,
      handle(ctx, async (call) => {
        const grant = await grantOr404(ctx, call);
        const { def, row } = await relatedOf(ctx, call, grant);
        return row ? renderOne(def, row, call.req) : renderEmpty(call.req);
      }),
    ),
    route(
      g.relationship,
      handle(ctx, async (call) => {
        const grant = await grantOr404(ctx, call);
        const { def, row } = await relatedOf(ctx, call, grant);
        return renderLinkage(call.req, usersEventsRoleDef, row, def);
      }),
    ),
  ];
}
