/** `GET /v1/activities` and `GET /v1/activities/{id}`: the log, admins only. */
import { notFound, renderList, renderOne } from "@shared/handlers/mod.ts";
import type { Handlers } from "@shared/contract.ts";
import type { auditContract } from "@shared/contracts/mod.ts";
import type { Handler } from "@shared/bus.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { adminCaller, type AuditContext } from "../context.ts";
import { activityDef, activityQuery } from "../resources.ts";
import { getActivity, listActivities } from "../store/activities.ts";

type AuditHandlers = Handlers<typeof auditContract.operations>;

function list(ctx: AuditContext): Handler<HttpRequest, HttpReply> {
  return async (req) => {
    await adminCaller(ctx, req.actor);
    const query = parseListQuery(req.query, activityQuery);
    const result = await listActivities(ctx.sql, query);
    return renderList(activityDef, result, { req, query });
  };
}

function get(ctx: AuditContext): Handler<HttpRequest, HttpReply> {
  return async (req) => {
    await adminCaller(ctx, req.actor);
    const query = parseSingleQuery(req.query, activityQuery);
    const row = await getActivity(ctx.sql, req.params.id) ?? notFound("activity", req.params.id);
    return renderOne(activityDef, row, { req, fields: query.fields });
  };
}

/** The audit contract's operations, by key. */
export function activityHandlers(ctx: AuditContext): AuditHandlers {
  return { "activities.list": list(ctx), "activities.get": get(ctx) };
}
