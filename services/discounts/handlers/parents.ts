/**
 * Codes seen from the catalog's resources: `/v1/events/{id}/discount-codes` (co-organizers:
 * that event's ticket codes), `/v1/events/{id}/discount-code` (admins: the event code applied
 * to it), `/v1/users/{id}/discount-codes` (that user or admins: the codes they created; the
 * user only those of events they still co-organize) and
 * `/v1/tickets/{id}/discount-codes` (co-organizers of the ticket's event).
 */
import { ForbiddenError } from "@shared/errors.ts";
import {
  type IncludeQuery,
  isAdmin,
  isId,
  notFound,
  renderEmpty,
  renderLinkage,
  renderList,
  renderOne,
  requireActor,
  requireAdmin,
  requireLogin,
  trashedAsked,
  withTrashed,
} from "@shared/handlers/mod.ts";
import { toResource } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { catalog, catalogInternal } from "@shared/subjects.ts";
import { access, type Caller, type DiscountsContext, requireCoorganizer } from "../context.ts";
import { codeDef, codeQuery } from "../resources.ts";
import { type CodeRow, type CodeScope, eventCodeOf, listCodes } from "../store/codes.ts";
import { readableEventsOf } from "./common.ts";

/**
 * The codes a list route shows, or linkage to them when `linkage` is set. `?get_trashed=true`
 * adds soft-deleted codes for admins; others may send it and see live codes only (as the
 * catalog's lists do).
 */
async function listOrLinkage(
  ctx: DiscountsContext,
  req: HttpRequest,
  collection: string,
  options: { scope: CodeScope; caller: Caller | null },
  linkage: boolean,
): Promise<HttpReply> {
  const scope = { scope: options.scope, withTrashed: withTrashed(options.caller, req.query) };
  if (linkage) {
    const query = linkageQuery(req, ["get_trashed"]);
    const all = await listCodes(ctx.sql, parseListQuery({ "page[size]": "0" }, codeQuery), scope);
    return renderCodeLinkage(req, all.rows, collection, query);
  }
  const query = parseListQuery(req.query, codeQuery);
  return renderList(codeDef, await listCodes(ctx.sql, query, scope), { req, query });
}

/**
 * The query of a linkage route under a resource the catalog owns (an event's discount codes):
 * `include` takes the relationship itself, whose codes then come in `included`, with
 * `fields[discount-code]`. The parent's other paths are the catalog's, on the parent's own route.
 * A fieldset of the catalog's types (the parent's) is taken unchecked, as the parent's other
 * relationship routes take it: nothing of those types is in this document (a 400 "unknown type"
 * until 2026-12-05).
 */
function linkageQuery(req: HttpRequest, extra: string[]): IncludeQuery {
  return parseSingleQuery(req.query, {
    includes: [req.params.rel],
    sparse: codeQuery.sparse,
    extra,
  });
}

/** Linkage to `codes` (rows, one or null), and the codes themselves when `include` asks. */
function renderCodeLinkage(
  req: HttpRequest,
  codes: CodeRow | CodeRow[] | null,
  collection: string,
  query: IncludeQuery,
): HttpReply {
  const rows = codes === null ? [] : [codes].flat();
  const included = query.include.length ? rows.map((row) => toResource(codeDef, row)) : undefined;
  return renderLinkage(codeDef, codes, {
    req,
    parent: { collection },
    includes: { query, included },
  });
}

/**
 * Whether the deleted event or ticket `params.id` is there for an admin asking for the trash
 * (`get_trashed=true`), as the catalog shows it to them (`/v1/events/{id}?get_trashed=true`, with
 * links to these routes): its codes in the trash are then listed. Until 2026-12-05 these routes
 * were a 404 for every deleted event and ticket (found by a review). By id only: the catalog
 * lists among ids.
 */
async function inTrash(
  ctx: DiscountsContext,
  req: HttpRequest,
  { caller, type }: { caller: Caller | null; type: "event" | "ticket" },
): Promise<boolean> {
  const id = req.params.id;
  if (!isAdmin(caller) || !trashedAsked(req.query) || !isId(id)) return false;
  const { document } = await ctx.bus.request(catalogInternal.list, {
    actor: req.actor,
    type,
    ids: [id],
    path: req.path,
    query: { get_trashed: "true", "page[size]": "0" },
  });
  return document.data.length > 0;
}

/**
 * Whether the user `params.id` is there for an admin: a live user, or a deleted one when they ask
 * for the trash (`get_trashed=true`), as the catalog shows it to them
 * (`/v1/users/{id}?get_trashed=true`, with links to these routes); the catalog grants the trash
 * to admins only. Until 2026-12-05 a deleted user's routes were a 404 even then (found by a
 * review), unlike a deleted event's or ticket's.
 */
async function userFound(ctx: DiscountsContext, req: HttpRequest): Promise<boolean> {
  const id = req.params.id;
  if (!isId(id)) return false;
  const { data } = await ctx.bus.request(catalog.resolve, {
    actor: req.actor,
    type: "user",
    ids: [id],
    trashed: trashedAsked(req.query),
  });
  return data.length > 0;
}

async function eventCodes(
  ctx: DiscountsContext,
  req: HttpRequest,
  linkage: boolean,
): Promise<HttpReply> {
  const rel = req.params.rel;
  if (rel !== "discount-codes" && rel !== "discount-code") notFound("relationship", rel);
  requireActor(req.actor);
  const { caller, event } = await access(ctx, req.actor, req.params.id);
  requireLogin(caller);
  const trashed = !event && await inTrash(ctx, req, { caller, type: "event" });
  const eventId = event?.id ?? (trashed ? req.params.id : undefined);
  if (rel === "discount-code") {
    requireAdmin(caller, "see the event discount code of an event");
    if (!eventId) notFound("event", req.params.id);
    const code = await eventCodeOf(ctx.sql, eventId) ?? null;
    if (linkage) return renderCodeLinkage(req, code, "events", linkageQuery(req, []));
    const query = parseSingleQuery(req.query, codeQuery);
    return code
      ? renderOne(codeDef, code, { req, fields: query.fields, include: query.include })
      : renderEmpty(req);
  }
  if (!eventId) notFound("event", req.params.id);
  requireCoorganizer(caller, event, "see the discount codes of this event");
  return await listOrLinkage(ctx, req, "events", {
    scope: { eventId, usedFor: "ticket" },
    caller,
  }, linkage);
}

async function userCodes(
  ctx: DiscountsContext,
  req: HttpRequest,
  linkage: boolean,
): Promise<HttpReply> {
  if (req.params.rel !== "discount-codes") notFound("relationship", req.params.rel);
  requireActor(req.actor);
  const { caller } = await access(ctx, req.actor);
  const known = requireLogin(caller);
  const userId = req.params.id;
  if (known.id !== userId) {
    if (!isAdmin(known)) {
      throw new ForbiddenError("Cannot see these discount codes: only that user and admins may");
    }
    if (!(await userFound(ctx, req))) notFound("user", userId);
  }
  // A non-admin lists only codes of events they still co-organize, filtered in SQL (counts and
  // pages stay right).
  const ofEvents = await readableEventsOf(ctx, { actor: req.actor, caller: known, userId });
  return await listOrLinkage(ctx, req, "users", {
    scope: { marketerId: userId, ofEvents },
    caller,
  }, linkage);
}

async function ticketCodes(
  ctx: DiscountsContext,
  req: HttpRequest,
  linkage: boolean,
): Promise<HttpReply> {
  if (req.params.rel !== "discount-codes") notFound("relationship", req.params.rel);
  requireActor(req.actor);
  const ticketId = req.params.id;
  const [ticket] = isId(ticketId)
    ? (await ctx.bus.request(catalogInternal.tickets, { ids: [ticketId] })).tickets
    : [];
  const { caller, event } = await access(ctx, req.actor, ticket?.eventId);
  const known = requireLogin(caller);
  // A ticket of an event the caller may not see is not found, as the event is not (a 403 would
  // tell a probe that the id exists): a draft, or a deleted event, which admins see only when
  // they ask with get_trashed (as the catalog's ticket routes answer).
  const trashedShown = isAdmin(known) && req.query.get_trashed === "true";
  const found = ticket || await inTrash(ctx, req, { caller, type: "ticket" });
  if (!found || (event === null && !trashedShown)) notFound("ticket", ticketId);
  requireCoorganizer(caller, event, "see the discount codes of this ticket");
  return await listOrLinkage(ctx, req, "tickets", { scope: { ticketId }, caller }, linkage);
}

/** `GET /v1/events/{id}/discount-codes` and `/discount-code`. */
export function relatedOfEvent(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return eventCodes(ctx, req, false);
}

export function linkageOfEvent(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return eventCodes(ctx, req, true);
}

/** `GET /v1/users/{id}/discount-codes`. */
export function relatedOfUser(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return userCodes(ctx, req, false);
}

export function linkageOfUser(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return userCodes(ctx, req, true);
}

/** `GET /v1/tickets/{id}/discount-codes`. */
export function relatedOfTicket(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return ticketCodes(ctx, req, false);
}

export function linkageOfTicket(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  return ticketCodes(ctx, req, true);
}
