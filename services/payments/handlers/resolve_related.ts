/**
 * `payments.resolve-related`: the `stripe-authorization` of events, for `include` on events
 * (the catalog names the events; the gateway asks here). Only events the actor organizes get
 * theirs; for the others the linkage stays unknown (left out).
 */
import { type Route, route } from "@shared/bus.ts";
import { type ResourceObject, toResource } from "@shared/jsonapi.ts";
import { askAccess } from "@shared/access.ts";
import { payments } from "@shared/subjects.ts";
import { isOrganizer, type PaymentsContext } from "../context.ts";
import { stripeAuthorizationDef } from "../resources.ts";
import { getAuthorizationOfEvent } from "../store/authorizations.ts";

export function resolveRelatedRoutes(ctx: PaymentsContext): Route[] {
  return [
    route(payments.resolveRelated, async ({ actor, parentType, relationship, parentIds }) => {
      const linkage: Record<string, { type: string; id: string } | null> = {};
      const data: ResourceObject[] = [];
      if (!actor || parentType !== "event" || relationship !== "stripe-authorization") {
        return { linkage, data };
      }
      for (const eventId of new Set(parentIds)) {
        const { caller, event } = await askAccess(ctx.bus, actor, eventId);
        if (!caller || !event || !isOrganizer(caller, event)) continue;
        const row = await getAuthorizationOfEvent(ctx.sql, event.id);
        linkage[eventId] = row ? { type: "stripe-authorization", id: String(row.id) } : null;
        if (row) data.push(toResource(stripeAuthorizationDef, row));
      }
      return { linkage, data };
    }),
  ];
}
