/**
 * Event types: a feature of the original's this rebuild leaves out, whose list its web client
 * still reads (the explore page's type filter, `store.findAll('event-type')`). There are none
 * here, so the list says so, as a list, rather than a 404 that failed the page.
 */
import { renderList } from "@shared/handlers/mod.ts";
import { parseListQuery } from "@shared/query.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import type { CatalogContext } from "../context.ts";
import { eventTypeDef, eventTypeQuery } from "../resources.ts";
import { type Call, handleAll } from "./common.ts";

/** An empty page, its query checked (an unknown filter field is a 400) and linked as any list's. */
function list(_ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const query = parseListQuery(call.req.query, eventTypeQuery);
  return Promise.resolve(
    renderList(eventTypeDef, { rows: [], count: 0 }, { req: call.req, query }),
  );
}

export function eventTypeHandlers(ctx: CatalogContext) {
  return handleAll(ctx, { "event-types.list": list });
}
