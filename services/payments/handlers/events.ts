/** `/v1/events/{id}/stripe-authorization` and its `/relationships/` twin (`params.rel`). */
import { type Route, route } from "@shared/bus.ts";
import { parseSingleQuery } from "@shared/query.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { payments } from "@shared/subjects.ts";
import { loadAccess, type PaymentsContext, requireOrganizer } from "../context.ts";
import { stripeAuthorizationQuery } from "../resources.ts";
import { type AuthorizationRow, getAuthorizationOfEvent } from "../store/authorizations.ts";
import { notFound, renderAuthorization, renderLinkage } from "./common.ts";

const REL = "stripe-authorization";

/** The event's authorization (or null), once the caller is known to organize the event. */
async function ofEvent(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<{ eventId: string; row: AuthorizationRow | null }> {
  const key = req.params.id;
  if (req.params.rel !== REL) notFound(`Cannot find ${req.path}`);
  const { caller, event } = await loadAccess(ctx, req.actor, key);
  if (!event) notFound(`Cannot find event ${JSON.stringify(key ?? "")}`);
  requireOrganizer(caller, event);
  return { eventId: event.id, row: await getAuthorizationOfEvent(ctx.sql, event.id) };
}

export function eventRoutes(ctx: PaymentsContext): Route[] {
  return [
    route(payments.events.related, async (req) => {
      const query = parseSingleQuery(req.query, stripeAuthorizationQuery);
      const { eventId, row } = await ofEvent(ctx, req);
      if (!row) notFound(`Cannot find a stripe-authorization of event ${eventId}`);
      return renderAuthorization(row, req, { fields: query.fields, include: query.include });
    }),
    route(payments.events.relationship, async (req) => {
      const { row } = await ofEvent(ctx, req);
      // Linkage of an empty to-one relationship is `null`, not an error (JSON:API).
      return renderLinkage(
        `/v1/events/${req.params.id}`,
        REL,
        row ? { type: "stripe-authorization", id: row.id } : null,
      );
    }),
  ];
}
