/**
 * `discounts.resolve`: codes by id for compound documents other services build; only the codes
 * the actor may manage (admins: all; others: ticket codes of events they co-organize).
 */
import { type ResourceObject, toResource } from "@shared/jsonapi.ts";
import type { resolveRequestSchema } from "@shared/schemas/bus.ts";
import type { z } from "zod";
import { isAdmin } from "@shared/handlers/mod.ts";
import { access, accessMany, type DiscountsContext, isCoorganizer } from "../context.ts";
import { codeDef, codeQuery } from "../resources.ts";
import { checkFieldset } from "@shared/query.ts";
import { getCodes } from "../store/codes.ts";

export async function resolveCodes(
  ctx: DiscountsContext,
  { actor, type, ids, fields }: z.infer<typeof resolveRequestSchema>,
): Promise<{ data: ResourceObject[] }> {
  checkFieldset(fields, codeDef.type, codeQuery.sparse![codeDef.type]);
  if (type !== "discount-code" || !actor) return { data: [] };
  const rows = await getCodes(ctx.sql, ids);
  const { caller } = await access(ctx, actor);
  if (isAdmin(caller)) return { data: rows.map((row) => toResource(codeDef, row)) };
  const eventIds = [
    ...new Set(rows.filter((r) => r.used_for === "ticket").map((r) => String(r.event_id))),
  ];
  if (!eventIds.length) return { data: [] };
  // One question to the catalog for every event, not a round trip each.
  const { events } = await accessMany(ctx, actor, eventIds);
  const allowed = new Set(eventIds.filter((id) => isCoorganizer(caller, events.get(id) ?? null)));
  return {
    data: rows
      .filter((row) => row.used_for === "ticket" && allowed.has(String(row.event_id)))
      .map((row) => toResource(codeDef, row)),
  };
}
