/** `/v1/events/{id}/stripe-authorization` and its `/relationships/` twin (`params.rel`). */
import { NotFoundError } from "@shared/errors.ts";
import { notFound, renderLinkage } from "@shared/handlers/mod.ts";
import { toResource } from "@shared/jsonapi.ts";
import { parseSingleQuery } from "@shared/query.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { requireOrganizer } from "@shared/access.ts";
import { loadAccess, type PaymentsContext } from "../context.ts";
import { stripeAuthorizationDef, stripeAuthorizationQuery } from "../resources.ts";
import { type AuthorizationRow, getAuthorizationOfEvent } from "../store/authorizations.ts";
import { renderAuthorization } from "./authorizations.ts";

const REL = "stripe-authorization";

/**
 * The event's authorization (or null), once the caller is known to organize the event. Both
 * routes call it before they read their query: a caller who may not see the event's link gets
 * the 401/403/404, never a 400 about what they sent.
 */
async function ofEvent(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<{ eventId: string; row: AuthorizationRow | null }> {
  const key = req.params.id;
  if (req.params.rel !== REL) throw new NotFoundError(`Cannot find ${req.path}`);
  const { caller, event } = await loadAccess(ctx, req.actor, key);
  if (!event) notFound("event", key);
  requireOrganizer(caller, event, "manage this event's Stripe authorization");
  return { eventId: event.id, row: await getAuthorizationOfEvent(ctx.sql, event.id) };
}

/** `GET /v1/events/{id}/stripe-authorization`. */
export async function relatedOfEvent(ctx: PaymentsContext, req: HttpRequest): Promise<HttpReply> {
  const { eventId, row } = await ofEvent(ctx, req);
  const query = parseSingleQuery(req.query, stripeAuthorizationQuery);
  if (!row) throw new NotFoundError(`Cannot find a stripe-authorization of event ${eventId}`);
  return renderAuthorization(row, { req, fields: query.fields, include: query.include });
}

/**
 * Linkage of an empty to-one relationship is `null`, not an error (JSON:API). The event is the
 * catalog's: `include` takes this relationship only, whose authorization then comes in `included`.
 * `fields[event]` is taken unchecked, as on the authorization's own routes and as the catalog's
 * routes of the event's other relationships take it (a 400 "unknown type" until 2026-12-05).
 */
export async function linkageOfEvent(ctx: PaymentsContext, req: HttpRequest): Promise<HttpReply> {
  const { row } = await ofEvent(ctx, req);
  const query = parseSingleQuery(req.query, {
    includes: [REL],
    sparse: stripeAuthorizationQuery.sparse,
  });
  const included = query.include.length && row
    ? [toResource(stripeAuthorizationDef, row)]
    : undefined;
  return renderLinkage(stripeAuthorizationDef, row, {
    req,
    parent: { collection: "events" },
    includes: { query, included },
  });
}
