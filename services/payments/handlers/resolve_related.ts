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
import { getAuthorizationsOfEvents } from "../store/authorizations.ts";

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
  // One question to the catalog and one query for every parent, not a round trip each.
  const { caller, events } = await ctx.access.askMany(actor, parentIds);
  // By event id, the parents naming it (an id and an identifier may name the same event).
  const organized = new Map<string, string[]>();
  for (const [parentId, event] of events) {
    linkage[parentId] = null;
    if (!caller || !event || !isOrganizer(caller, event)) continue;
    organized.set(event.id, [...organized.get(event.id) ?? [], parentId]);
  }
  for (const row of await getAuthorizationsOfEvents(ctx.sql, [...organized.keys()])) {
    for (const parentId of organized.get(row.event_id)!) {
      linkage[parentId] = { type: "stripe-authorization", id: String(row.id) };
    }
    data.push(toResource(stripeAuthorizationDef, row));
  }
  return { linkage, data };
}
