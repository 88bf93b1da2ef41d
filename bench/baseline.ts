/**
 * The baseline the gateway path is measured against: one Deno process, Hono + postgres.js, that
 * answers `GET /v1/event-topics` and `GET /v1/events/{id}` for anonymous callers with the very
 * same work the catalog does for them: the same query parsing, the same store functions (so the
 * same SQL), the same pool settings and the same JSON:API document builders. What it leaves out
 * is exactly what the split adds: the gateway's middleware, the bus hop and the second process.
 *
 * Run as its own process: `PORT=8090 DATABASE_URL=... deno run -A bench/baseline.ts`.
 */
import { serveSide } from "./serve_side.ts";
import type { Hono } from "hono";
import { baselineApp, jsonApiResponse } from "./setup.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import { NotFoundError } from "@shared/errors.ts";
import { listDocument, singleDocument } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import { queryOf } from "../gateway/forward.ts";
import {
  eventDef,
  eventQuery,
  eventTopicDef,
  eventTopicQuery,
} from "../services/catalog/resources.ts";
import { SCHEMA } from "../services/catalog/service.ts";
import { getEvent } from "../services/catalog/store/events.ts";
import { listTopics } from "../services/catalog/store/topics.ts";

/** Anonymous callers see published events only, as in the catalog. */
const anonymous = { id: null, admin: false };

/**
 * The two read routes on `sql` (a pool on the catalog's schema).
 *
 * @example
 * ```ts ignore
 * const sql = await openDatabase(url, { schema: "catalog" });
 * Deno.serve({ port: 8090 }, createBaselineApp(sql).fetch);
 * ```
 */
export function createBaselineApp(sql: Sql): Hono {
  const app = baselineApp();
  app.get("/v1/event-topics", async (c) => {
    const raw = queryOf(c.req.url);
    const query = parseListQuery(raw, eventTopicQuery);
    const result = await listTopics(sql, "event_topics", query, { withTrashed: false });
    return jsonApiResponse(listDocument(eventTopicDef, result.rows, {
      path: c.req.path,
      query: raw,
      count: result.count,
      page: query.page,
      fields: query.fields,
    }));
  });
  app.get("/v1/events/:id", async (c) => {
    const id = c.req.param("id");
    const query = parseSingleQuery(queryOf(c.req.url), eventQuery);
    const row = await getEvent(sql, id, { viewer: anonymous, withTrashed: false });
    if (!row) throw new NotFoundError(`Cannot find event ${JSON.stringify(id)}`);
    return jsonApiResponse(
      singleDocument(eventDef, row, { self: c.req.path, fields: query.fields }),
    );
  });
  return app;
}

if (import.meta.main) {
  await serveSide("baseline", 8090, async (url) => {
    // Same pool as the catalog's (openDatabase's default size), on the catalog's schema.
    const sql = await openDatabase(url, { schema: SCHEMA });
    return { fetch: createBaselineApp(sql).fetch, close: () => sql.end({ timeout: 5 }) };
  });
}
