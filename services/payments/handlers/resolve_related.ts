/**
 * `payments.resolve-related`: the `stripe-authorization` of events, for `include` on events
 * (the catalog names the events; the gateway asks here). Only events the actor organizes get
 * theirs; the others get `null` linkage, matching what is included for them (nothing), so the
 * compound document stays fully linked without telling whether an authorization exists.
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
      if (parentType !== "event" || relationship !== "stripe-authorization") {
        return { linkage, data };
      }
      if (!actor) return { linkage: Object.fromEntries(parentIds.map((id) => [id, null])), data };
      for (const eventId of new Set(parentIds)) {
        linkage[eventId] = null;
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
