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
import { type AuthorizationRow, getAuthorizations } from "../store/authorizations.ts";

export async function resolveAuthorizations(
  ctx: PaymentsContext,
  { actor, type, ids, fields }: z.infer<typeof resolveRequestSchema>,
): Promise<{ data: ResourceObject[] }> {
  const { type: own } = stripeAuthorizationDef;
  checkFieldset(fields, own, stripeAuthorizationQuery.sparse![own]);
  if (!actor || type !== "stripe-authorization") return { data: [] };
  const rows = await getAuthorizations(ctx.sql, ids);
  const visible: AuthorizationRow[] = [];
  for (const eventId of new Set(rows.map((row) => row.event_id))) {
    const { caller, event } = await ctx.access.ask(actor, eventId);
    if (caller && event && isOrganizer(caller, event)) {
      visible.push(...rows.filter((row) => row.event_id === eventId));
    }
  }
  return { data: visible.map((row) => toResource(stripeAuthorizationDef, row)) };
}
