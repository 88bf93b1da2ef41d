/**
 * Related-resource routes (`/v1/events/{id}/tickets`, `/v1/tickets/{id}/event`, ...) answer with
 * resources of another type: `include` and `fields` follow the rules of that type's own routes
 * (as the original's related views were that type's list and detail views), with the same
 * visibility. A related list already parsed its query with that type's spec.
 */
import { renderEmpty, renderList } from "@shared/handlers/mod.ts";
import type { ResourceDef } from "@shared/jsonapi.ts";
import { type ListQuery, parseSingleQuery } from "@shared/query.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import type { CatalogContext } from "../context.ts";
import { querySpecs } from "../resources.ts";
import type { Row } from "../store/common.ts";
import type { Call } from "./common.ts";
import { loadIncluded, renderShown } from "./includes.ts";

/** One related resource of `def`'s type (or `data: null`), with what `include` asks for. */
export async function renderRelatedOne(
  ctx: CatalogContext,
  call: Call,
  def: ResourceDef<Row>,
  row: Row | null | undefined,
): Promise<HttpReply> {
  const query = parseSingleQuery(call.req.query, querySpecs[def.type]);
  if (!row) return renderEmpty(call.req);
  return await renderShown(ctx, call.caller, def, row, query, { req: call.req });
}

/** A page of related resources of `def`'s type, with what `include` asks for. */
export async function renderRelatedList(
  ctx: CatalogContext,
  call: Call,
  def: ResourceDef<Row>,
  many: { rows: Row[]; count: number },
  query: ListQuery,
): Promise<HttpReply> {
  const included = await loadIncluded(ctx, call.caller, def.type, many.rows, query);
  return renderList(def, many, { req: call.req, query, included });
}
