/**
 * `discounts.resolve-related`: an event's `discount-codes` (its ticket codes, for its
 * co-organizers and admins) and `discount-code` (the event code applied to it, for admins), and a
 * ticket's `discount-codes` (for the co-organizers of its event), for `include` on events and
 * tickets. Where the actor may not manage the codes, the linkage is empty (`[]` or `null`),
 * matching what is included for that parent (nothing): the document stays fully linked.
 */
import { type Route, route } from "@shared/bus.ts";
import { type ResourceObject, toResource } from "@shared/jsonapi.ts";
import { catalogInternal, discounts } from "@shared/subjects.ts";
import { access, type DiscountsContext, isAdmin, isCoorganizer } from "../context.ts";
import { codeDef } from "../resources.ts";
import { codesOfEvent, codesOfTicket, eventCodeOf } from "../store/codes.ts";

type Identifier = { type: string; id: string };

export function resolveRelatedRoutes(ctx: DiscountsContext): Route[] {
  return [
    route(discounts.resolveRelated, async ({ actor, parentType, relationship, parentIds }) => {
      // Until the actor proves allowed, each parent links to nothing (nothing is included for it).
      const empty = relationship === "discount-code" ? null : [];
      const linkage: Record<string, Identifier[] | Identifier | null> = Object.fromEntries(
        parentIds.map((id) => [id, empty]),
      );
      const data: ResourceObject[] = [];
      if (!actor) return { linkage, data };
      if (parentType === "ticket" && relationship === "discount-codes") {
        const { tickets } = await ctx.bus.request(catalogInternal.tickets, { ids: parentIds });
        for (const ticket of tickets) {
          const { caller, event } = await access(ctx, actor, ticket.eventId);
          if (!isCoorganizer(caller, event)) continue;
          const codes = await codesOfTicket(ctx.sql, ticket.id);
          linkage[ticket.id] = codes.map((code) => ({ type: codeDef.type, id: String(code.id) }));
          data.push(...codes.map((code) => toResource(codeDef, code)));
        }
        return { linkage, data };
      }
      const known = ["discount-codes", "discount-code"];
      if (parentType !== "event" || !known.includes(relationship)) return { linkage, data };
      for (const eventId of new Set(parentIds)) {
        const { caller, event } = await access(ctx, actor, eventId);
        if (!event) continue;
        if (relationship === "discount-code") {
          if (!isAdmin(caller)) continue;
          const code = await eventCodeOf(ctx.sql, event.id);
          linkage[eventId] = code ? { type: codeDef.type, id: String(code.id) } : null;
          if (code) data.push(toResource(codeDef, code));
          continue;
        }
        if (!isCoorganizer(caller, event)) continue;
        const codes = (await codesOfEvent(ctx.sql, event.id))
          .filter((code) => code.used_for === "ticket");
        linkage[eventId] = codes.map((code) => ({ type: codeDef.type, id: String(code.id) }));
        data.push(...codes.map((code) => toResource(codeDef, code)));
      }
      return { linkage, data };
    }),
  ];
}
