/** `GET /v1/activities` and `GET /v1/activities/{id}`: the log, admins only. */
import { type Route, route } from "@shared/bus.ts";
import { NotFoundError } from "@shared/errors.ts";
import { listDocument, singleDocument } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import { audit } from "@shared/subjects.ts";
import { type AuditContext, requireAdmin } from "../context.ts";
import { activityDef, activityQuery } from "../resources.ts";
import { getActivity, listActivities } from "../store/activities.ts";

export function activityRoutes(ctx: AuditContext): Route[] {
  const a = audit.activities;
  return [
    route(a.list, async (req) => {
      await requireAdmin(ctx, req.actor);
      const query = parseListQuery(req.query, activityQuery);
      const result = await listActivities(ctx.sql, query);
      return {
        status: 200,
        body: listDocument(activityDef, result.rows, {
          path: req.path,
          query: req.query,
          count: result.count,
          page: query.page,
          fields: query.fields,
        }),
      };
    }),
    route(a.get, async (req) => {
      await requireAdmin(ctx, req.actor);
      const query = parseSingleQuery(req.query, activityQuery);
      const row = await getActivity(ctx.sql, req.params.id);
      if (!row) throw new NotFoundError(`Cannot find activity ${JSON.stringify(req.params.id)}`);
      return {
        status: 200,
        body: singleDocument(activityDef, row, { self: req.path, fields: query.fields }),
      };
    }),
  ];
}
