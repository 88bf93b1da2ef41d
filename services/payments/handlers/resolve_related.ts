/**
 * `payments.resolve-related`: the `stripe-authorization` of events, for `include` on events
 * (the catalog names the events; the gateway asks here). Only events the actor organizes get
 * theirs; the others get `null` linkage, matching what is included for them (nothing), so the
 * compound document stays fully linked without telling whether an authorization exists.
 */
import { type Identifier, type ResourceObject, toResource } from "@shared/jsonapi.ts";
import type { resolveRelatedRequestSchema } from "@shared/schemas/bus.ts";
import type { z } from "zod";
import { isOrganizer, type PaymentsContext } from "../context.ts";
import { stripeAuthorizationDef, stripeAuthorizationQuery } from "../resources.ts";
import { checkFieldset } from "@shared/query.ts";
import { getAuthorizationOfEvent } from "../store/authorizations.ts";

export async function resolveRelatedAuthorizations(
  ctx: PaymentsContext,
  { actor, parentType, relationship, parentIds, fields }: z.infer<
    typeof resolveRelatedRequestSchema
  >,
): Promise<{ linkage: Record<string, Identifier | null>; data: ResourceObject[] }> {
  const { type: own } = stripeAuthorizationDef;
  checkFieldset(fields, own, stripeAuthorizationQuery.sparse![own]);
  const linkage: Record<string, Identifier | null> = {};
  const data: ResourceObject[] = [];
  if (parentType !== "event" || relationship !== "stripe-authorization") {
    return { linkage, data };
  }
  if (!actor) return { linkage: Object.fromEntries(parentIds.map((id) => [id, null])), data };
  for (const eventId of new Set(parentIds)) {
    linkage[eventId] = null;
    const { caller, event } = await ctx.access.ask(actor, eventId);
    if (!caller || !event || !isOrganizer(caller, event)) continue;
    const row = await getAuthorizationOfEvent(ctx.sql, event.id);
    linkage[eventId] = row ? { type: "stripe-authorization", id: String(row.id) } : null;
    if (row) data.push(toResource(stripeAuthorizationDef, row));
  }
  return { linkage, data };
}
