/**
 * The single process the cache benchmark (bench/cache.ts) compares the gateway with: one Deno
 * process, Hono + postgres.js, that reads Postgres on every request, answering the four public
 * reads anonymous visitors make: the topic list and an event (bench/baseline.ts), an event's
 * tickets (the catalog's query parsing, visibility rule, SQL and document), and the checkout
 * lookup (bench/discounts_baseline.ts).
 *
 * Run as its own process: `PORT=8092 DATABASE_URL=... deno run -A bench/cache_baseline.ts`.
 */
import { serveSide } from "./serve_side.ts";
import type { Hono } from "hono";
import { openDatabase, type Sql } from "@shared/db.ts";
import { NotFoundError } from "@shared/errors.ts";
import { listDocument } from "@shared/jsonapi.ts";
import { parseListQuery } from "@shared/query.ts";
import { queryOf } from "../gateway/forward.ts";
import { ticketDef, ticketQuery } from "../services/catalog/resources.ts";
import { SCHEMA as CATALOG_SCHEMA } from "../services/catalog/service.ts";
import { getEvent } from "../services/catalog/store/events.ts";
import { listTickets } from "../services/catalog/store/tickets.ts";
import { SCHEMA as DISCOUNTS_SCHEMA } from "../services/discounts/service.ts";
import { createBaselineApp } from "./baseline.ts";
import { createDiscountsBaselineApp } from "./discounts_baseline.ts";
import { jsonApiResponse } from "./setup.ts";

const anonymous = { id: null, admin: false };

/** The four public reads on pools of the catalog's and the discounts' schemas. */
function createCacheBaselineApp(
  catalogSql: Sql,
  discountsSql: Sql,
  options: { jwtSecret?: string } = {},
): Hono {
  const app = createBaselineApp(catalogSql, options);
  app.get("/v1/events/:id/tickets", async (c) => {
    const id = c.req.param("id");
    const raw = queryOf(c.req.url);
    const query = parseListQuery(raw, ticketQuery);
    const event = await getEvent(catalogSql, id, { viewer: anonymous, withTrashed: false });
    if (!event) throw new NotFoundError(`Cannot find event ${JSON.stringify(id)}`);
    const result = await listTickets(catalogSql, query, { eventId: String(event.id) });
    return jsonApiResponse(listDocument(ticketDef, result.rows, {
      path: c.req.path,
      query: raw,
      count: result.count,
      page: query.page,
      fields: query.fields,
    }));
  });
  app.route("/", createDiscountsBaselineApp(catalogSql, discountsSql));
  return app;
}

if (import.meta.main) {
  await serveSide("cache baseline", 8092, async (url) => {
    const catalogSql = await openDatabase(url, { schema: CATALOG_SCHEMA });
    const discountsSql = await openDatabase(url, { schema: DISCOUNTS_SCHEMA });
    return {
      fetch: createCacheBaselineApp(catalogSql, discountsSql, {
        jwtSecret: Deno.env.get("JWT_SECRET"),
      }).fetch,
      close: async () => {
        await Promise.all([catalogSql.end({ timeout: 5 }), discountsSql.end({ timeout: 5 })]);
      },
    };
  });
}
