/**
 * `payments.resolve`: authorizations by id for compound documents another service's answer
 * includes. Only those of events the actor organizes are returned.
 */
import { type Route, route } from "@shared/bus.ts";
import { toResource } from "@shared/jsonapi.ts";
import { askAccess } from "@shared/access.ts";
import { payments } from "@shared/subjects.ts";
import { isOrganizer, type PaymentsContext } from "../context.ts";
import { stripeAuthorizationDef } from "../resources.ts";
import { getAuthorizations } from "../store/authorizations.ts";

export function resolveRoutes(ctx: PaymentsContext): Route[] {
  return [
    route(payments.resolve, async ({ actor, type, ids }) => {
      if (!actor || type !== "stripe-authorization") return { data: [] };
      const rows = await getAuthorizations(ctx.sql, ids);
      const visible = [];
      for (const eventId of new Set(rows.map((row) => row.event_id))) {
        const { caller, event } = await askAccess(ctx.bus, actor, eventId);
        if (caller && event && isOrganizer(caller, event)) {
          visible.push(...rows.filter((row) => row.event_id === eventId));
        }
      }
      return { data: visible.map((row) => toResource(stripeAuthorizationDef, row)) };
    }),
  ];
}
