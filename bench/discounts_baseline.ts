/**
 * The baseline of the checkout lookup: one Deno process, Hono + postgres.js, answering
 * `GET /v1/events/{id}/discount-codes/{code}` for anonymous callers with the same work the split
 * system does (the catalog's event lookup and visibility rule, the discounts service's query
 * parsing, SQL, validity check and JSON:API document), minus the gateway, the two bus hops and
 * the extra processes.
 *
 * Run as its own process: `PORT=8091 DATABASE_URL=... deno run -A bench/discounts_baseline.ts`.
 */
import { serveSide } from "./serve_side.ts";
import type { Hono } from "hono";
import { baselineApp, jsonApiResponse } from "./setup.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import { NotFoundError, UnprocessableError } from "@shared/errors.ts";
import { singleDocument } from "@shared/jsonapi.ts";
import { parseSingleQuery } from "@shared/query.ts";
import { queryOf } from "../gateway/forward.ts";
import { getEvent } from "../services/catalog/store/events.ts";
import { SCHEMA as CATALOG_SCHEMA } from "../services/catalog/service.ts";
import { unusable } from "../services/discounts/handlers/checkout.ts";
import { codeDef, codeQuery } from "../services/discounts/resources.ts";
import { CODE_PATTERN } from "../services/discounts/rules.ts";
import { SCHEMA as DISCOUNTS_SCHEMA } from "../services/discounts/service.ts";
import { findByText } from "../services/discounts/store/codes.ts";

const anonymous = { id: null, admin: false };

/** The lookup route on two pools: the catalog's schema and the discounts schema. */
export function createDiscountsBaselineApp(catalogSql: Sql, discountsSql: Sql): Hono {
  const app = baselineApp();
  app.get("/v1/events/:id/discount-codes/:code", async (c) => {
    const query = parseSingleQuery(queryOf(c.req.url), codeQuery);
    const id = c.req.param("id");
    const text = c.req.param("code");
    const event = await getEvent(catalogSql, id, { viewer: anonymous });
    if (!event) throw new NotFoundError(`Cannot find event ${JSON.stringify(id)}`);
    const code = CODE_PATTERN.test(text)
      ? await findByText(discountsSql, String(event.id), text)
      : undefined;
    if (!code) throw new NotFoundError(`Cannot find discount code ${JSON.stringify(text)}`);
    const why = unusable(code);
    if (why) throw new UnprocessableError(`Cannot use discount code ${code.code}: ${why}`);
    return jsonApiResponse(
      singleDocument(codeDef, code, { self: c.req.path, fields: query.fields }),
    );
  });
  return app;
}

if (import.meta.main) {
  await serveSide("discounts baseline", 8091, async (url) => {
    const catalogSql = await openDatabase(url, { schema: CATALOG_SCHEMA });
    const discountsSql = await openDatabase(url, { schema: DISCOUNTS_SCHEMA });
    return {
      fetch: createDiscountsBaselineApp(catalogSql, discountsSql).fetch,
      close: async () => {
        await Promise.all([catalogSql.end({ timeout: 5 }), discountsSql.end({ timeout: 5 })]);
      },
    };
  });
}
