/** `GET /v1/activities` and `GET /v1/activities/{id}`: the log, admins only. */
import { notFound, renderList, renderOne } from "@shared/handlers/mod.ts";
import type { Handlers } from "@shared/contract.ts";
import type { auditContract } from "@shared/contracts/mod.ts";
import type { Handler } from "@shared/bus_endpoints.ts";
import { type ListQuery, parseListQuery, parseSingleQuery } from "@shared/query.ts";
import { BadRequestError } from "@shared/errors.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { adminCaller, type AuditContext } from "../context.ts";
import { activityDef, activityQuery, activitySort } from "../resources.ts";
import { getActivity, listActivities, listActivitiesUpTo } from "../store/activities.ts";

type AuditHandlers = Handlers<typeof auditContract.operations>;

/**
 * Activities an unpaged list (`page[size]=0`) may hold. The log only grows (a year of facts), so
 * "all of it" is unbounded; and an answer beyond the bus's 1 MiB is refused anyway, which even the
 * smallest activities (`fields[activity]=`, about 85 bytes each) pass well before this many.
 */
const UNPAGED_MAX = 20_000;

/** The page asked for; an unpaged one read up to its limit, refused (400) beyond it. */
async function readList(ctx: AuditContext, query: ListQuery) {
  if (query.page.size !== 0) return await listActivities(ctx.sql, query);
  const max = ctx.unpagedMax ?? UNPAGED_MAX;
  const rows = await listActivitiesUpTo(ctx.sql, query, max + 1);
  if (rows.length > max) {
    throw new BadRequestError(
      `Cannot list every activity: more than ${max} match; ask for pages (page[size] and ` +
        "page[number]) or filter",
      { parameter: "page[size]" },
    );
  }
  return { rows, count: rows.length };
}

function list(ctx: AuditContext): Handler<HttpRequest, HttpReply> {
  return async (req) => {
    await adminCaller(ctx, req.actor);
    const parsed = parseListQuery(req.query, activityQuery);
    const query = { ...parsed, sort: activitySort(parsed.sort) };
    const result = await readList(ctx, query);
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
