/**
 * Capabilities other services ask the catalog for over the bus: who a caller is, their roles on
 * an event, and ticket prices. Other services never read the catalog's tables.
 */
import { type CatalogContext, loadCaller } from "../context.ts";
import { getEvent } from "../store/events.ts";
import { getTickets } from "../store/tickets.ts";
import { rolesOnEvent } from "../store/users.ts";
import { type CatalogHandlers, viewer } from "./common.ts";

type Role = "owner" | "organizer" | "coorganizer";

export function internalHandlers(
  ctx: CatalogContext,
): Pick<CatalogHandlers, "internal.access" | "internal.tickets"> {
  return {
    "internal.access": async ({ actor, event: key }) => {
      // A token of a deleted user is refused here too (UnauthorizedError crosses the bus).
      const caller = await loadCaller(ctx.sql, actor);
      if (!key) return { caller, event: null };
      const event = await getEvent(ctx.sql, key, { viewer: viewer(caller) });
      if (!event) return { caller, event: null };
      const roles = caller ? await rolesOnEvent(ctx.sql, caller.id, String(event.id)) : [];
      return {
        caller,
        event: {
          id: String(event.id),
          identifier: String(event.identifier),
          state: event.state as "draft" | "published",
          canPayByStripe: Boolean(event.can_pay_by_stripe),
          isStripeLinked: Boolean(event.is_stripe_linked),
          roles: roles as Role[],
        },
      };
    },
    "internal.tickets": async ({ ids }) => {
      const rows = await getTickets(ctx.sql, ids);
      return {
        tickets: rows.map((row) => ({
          id: String(row.id),
          eventId: String(row.event_id),
          type: row.type as "free" | "paid" | "donation",
          price: String(row.price),
        })),
      };
    },
  };
}
