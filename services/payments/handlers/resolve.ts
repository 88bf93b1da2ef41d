/**
 * `payments.resolve`: authorizations by id for compound documents another service's answer
 * includes. Only those of events the actor organizes are returned.
 */
import { type ResourceObject, toResource } from "@shared/jsonapi.ts";
import type { resolveRequestSchema } from "@shared/schemas/bus.ts";
import type { z } from "zod";
import { isOrganizer, type PaymentsContext } from "../context.ts";
import { stripeAuthorizationDef, stripeAuthorizationQuery } from "../resources.ts";
import { checkFieldset } from "@shared/query.ts";
import { getAuthorizations } from "../store/authorizations.ts";

export async function resolveAuthorizations(
  ctx: PaymentsContext,
  { actor, type, ids, fields }: z.infer<typeof resolveRequestSchema>,
): Promise<{ data: ResourceObject[] }> {
  const { type: own } = stripeAuthorizationDef;
  checkFieldset(fields, own, stripeAuthorizationQuery.sparse![own]);
  if (!actor || type !== "stripe-authorization") return { data: [] };
  const rows = await getAuthorizations(ctx.sql, ids);
  if (!rows.length) return { data: [] };
  // One question to the catalog for every event, not a round trip each.
  const { caller, events } = await ctx.access.askMany(actor, rows.map((row) => row.event_id));
  const visible = rows.filter((row) => {
    const event = events.get(row.event_id) ?? null;
    return caller && event && isOrganizer(caller, event);
  });
  return { data: visible.map((row) => toResource(stripeAuthorizationDef, row)) };
}
