/**
 * The baseline the gateway path is measured against: one Deno process, Hono + postgres.js, that
 * answers `GET /v1/event-topics` and `GET /v1/events/{id}` for anonymous callers with the very
 * same work the catalog does for them: the same query parsing, the same store functions (so the
 * same SQL), the same pool settings and the same JSON:API document builders. What it leaves out
 * is exactly what the split adds: the gateway's middleware, the bus hop and the second process.
 *
 * Given the JWT secret, it answers a signed-in `GET /v1/events/{id}` as a monolith does and as
 * the split does: the token verified by the gateway's own middleware (gateway/middleware/auth.ts,
 * which remembers verified tokens), the caller read in the event's statement (`getEventAs`, the
 * catalog's single-statement signed-in read). Until 2026-12-01 it answered every request as
 * anonymous, so the signed-in comparison set a signed-in read against an anonymous one.
 *
 * Run as its own process: `PORT=8090 DATABASE_URL=... deno run -A bench/baseline.ts`.
 */
import { serveSide } from "./serve_side.ts";
import type { Hono, MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../gateway/env.ts";
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
import { getEvent, getEventAs } from "../services/catalog/store/events.ts";
import type { EventRow } from "../services/catalog/store/rows.ts";
import { knownCaller } from "../services/catalog/context.ts";
import { trashedAsked } from "@shared/handlers/guards.ts";
import { auth } from "../gateway/middleware/auth.ts";
import { listTopics } from "../services/catalog/store/topics.ts";

/** Anonymous callers see published events only, as in the catalog. */
const anonymous = { id: null, admin: false };

/** Without a JWT secret every caller is anonymous. */
const anonymousOnly: MiddlewareHandler<GatewayEnv> = async (c, next) => {
  c.set("actor", null);
  await next();
};

/**
 * The two read routes on `sql` (a pool on the catalog's schema); with `jwtSecret`, signed-in
 * event reads too (without it a token is ignored, as before).
 *
 * @example
 * ```ts ignore
 * const sql = await openDatabase(url, { schema: "catalog" });
 * Deno.serve({ port: 8090 }, createBaselineApp(sql, { jwtSecret: "..." }).fetch);
 * ```
 */
export function createBaselineApp(sql: Sql, options: { jwtSecret?: string } = {}): Hono {
  const app = baselineApp();
  const verifyToken = options.jwtSecret ? auth({ secret: options.jwtSecret }) : anonymousOnly;
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
  app.get("/v1/events/:id", verifyToken, async (c) => {
    const id = c.req.param("id");
    const raw = queryOf(c.req.url);
    const query = parseSingleQuery(raw, eventQuery);
    const actor = c.get("actor");
    let row: EventRow | undefined;
    if (actor) {
      const found = await getEventAs(sql, id, {
        actor,
        trashedAsked: trashedAsked(raw),
      });
      knownCaller(found.caller);
      row = found.event;
    } else {
      row = await getEvent(sql, id, { viewer: anonymous, withTrashed: false });
    }
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
    const jwtSecret = Deno.env.get("JWT_SECRET");
    return {
      fetch: createBaselineApp(sql, { jwtSecret }).fetch,
      close: () => sql.end({ timeout: 5 }),
    };
  });
}
