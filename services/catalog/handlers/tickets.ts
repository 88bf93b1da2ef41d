/** Tickets: managed by the co-organizers of their event; listed publicly under published events. */
import { ConflictError, UnprocessableError } from "@shared/errors.ts";
import {
  deletedReply,
  notFound,
  permanentDelete,
  renderList,
  requireAdmin,
  requireLogin,
  withTrashed,
} from "@shared/handlers/mod.ts";
import { type ParsedResource, parseResourceDocument, validateAttributes } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import {
  DEFAULT_TICKET_QUANTITY,
  ticketAttributes,
  ticketUpdateAttributes,
} from "@shared/schemas/catalog.ts";
import type { Queryable } from "@shared/db.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import { type CatalogContext, requireEventLevel } from "../context.ts";
import { eventDef, ticketDef, ticketQuery } from "../resources.ts";
import type { EventRow, TicketRow } from "../store/common.ts";
import { getEvent, isLiveEvent, lockLiveEvent } from "../store/events.ts";
import {
  deleteTicket,
  getTicket,
  insertTicket,
  listTickets,
  ticketNameTaken,
  type TicketValues,
  updateTicket,
} from "../store/tickets.ts";
import { type Call, commit, handleAll, viewer } from "./common.ts";
import { renderRelatedOne } from "./related.ts";
import {
  loadIncluded,
  renderLinkageShown,
  renderShown,
  renderWritten,
  writeQuery,
} from "./includes.ts";

function unprocessable(detail: string, pointer: string): never {
  throw new UnprocessableError(`Cannot save ticket: ${detail}`, { pointer });
}

/**
 * The ticket and its event, once the caller is known to be a co-organizer of that event. Routes
 * call it before they read their query or body, so a caller who may not see the ticket gets the
 * 401/403/404 that hides it, never a 400 about what they sent.
 */
async function managedTicket(
  ctx: CatalogContext,
  call: Call,
): Promise<{ ticket: TicketRow; event: EventRow }> {
  const id = call.req.params.id;
  const ticket = await getTicket(ctx.sql, id, withTrashed(call.caller, call.req.query)) ??
    notFound("ticket", id);
  // A soft-deleted event hides its tickets as it hides itself: from all but admins who ask.
  const event = await getEvent(ctx.sql, ticket.event_id, {
    viewer: viewer(call.caller),
    withTrashed: withTrashed(call.caller, call.req.query),
  }) ?? notFound("ticket", id);
  await requireEventLevel(ctx.sql, call.caller, event.id, "coorganizer");
  return { ticket, event };
}

/**
 * A ticket's name is unique among the live tickets of its event, as the original's "Ticket
 * already exists" (409) made it: buyers choose a ticket by its name.
 */
async function requireFreeName(tx: Queryable, eventId: string, name: string, exceptId?: string) {
  if (await ticketNameTaken(tx, eventId, name, exceptId)) {
    throw new ConflictError("Cannot save ticket: the event already has a ticket of that name", {
      pointer: "/data/attributes/name",
    });
  }
}

/** Rules on the merged state: free iff price 0, sales window in order. */
function checkTicket(values: TicketValues) {
  const price = Number(values.price ?? 0);
  if (values.type === "free" && price !== 0) {
    unprocessable("a free ticket has price 0", "/data/attributes/price");
  }
  if (values.type !== "free" && price === 0) {
    unprocessable(`a ${values.type} ticket needs a price above 0`, "/data/attributes/price");
  }
  if (
    values.sales_starts_at && values.sales_ends_at &&
    values.sales_ends_at.getTime() <= values.sales_starts_at.getTime()
  ) {
    unprocessable("sales-ends-at must be after sales-starts-at", "/data/attributes/sales-ends-at");
  }
}

function ticketValues(attrs: Record<string, unknown>): TicketValues {
  const values: TicketValues = {};
  const map: [string, keyof TicketValues][] = [
    ["name", "name"],
    ["description", "description"],
    ["type", "type"],
    ["sales-starts-at", "sales_starts_at"],
    ["sales-ends-at", "sales_ends_at"],
  ];
  for (const [from, to] of map) {
    if (attrs[from] !== undefined) (values as Record<string, unknown>)[to] = attrs[from];
  }
  if (attrs.price !== undefined) values.price = Number(attrs.price ?? 0).toFixed(2);
  if (attrs.quantity !== undefined) {
    values.quantity = (attrs.quantity as number | null) ?? DEFAULT_TICKET_QUANTITY;
  }
  return values;
}

async function list(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const query = parseListQuery(call.req.query, ticketQuery);
  const result = await listTickets(ctx.sql, query, {
    withTrashed: withTrashed(call.caller, query.extra),
  });
  const included = await loadIncluded(ctx, call.caller, "ticket", result.rows, query);
  return renderList(ticketDef, result, { req: call.req, query, included });
}

async function get(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { ticket } = await managedTicket(ctx, call);
  const query = parseSingleQuery(call.req.query, ticketQuery);
  return await renderShown(ctx, call.caller, ticketDef, ticket, query, { req: call.req });
}

/** The event the body's `event` names, once the caller may manage its tickets. */
async function eventOf(
  ctx: CatalogContext,
  call: Call,
  ref: ParsedResource["relationships"][string] | undefined,
): Promise<EventRow> {
  if (!ref || Array.isArray(ref)) {
    unprocessable("event is required", "/data/relationships/event");
  }
  const event = await getEvent(ctx.sql, ref.id, { viewer: viewer(call.caller) });
  if (!event) {
    unprocessable("the event does not exist", "/data/relationships/event");
  }
  await requireEventLevel(ctx.sql, call.caller, event.id, "coorganizer");
  return event;
}

async function create(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  // Anonymous callers learn nothing about which events exist.
  requireLogin(call.caller);
  const query = await writeQuery(ctx, call, ticketDef);
  const doc = parseResourceDocument(call.req.body, {
    type: "ticket",
    relationships: { event: { type: "event" } },
    known: ticketDef.relationships,
  });
  const event = await eventOf(ctx, call, doc.relationships.event);
  const attrs = validateAttributes(ticketAttributes, doc.attributes);
  const values = { ...ticketValues(attrs), event_id: event.id };
  checkTicket(values);
  const row = await commit(
    ctx,
    call,
    { type: "ticket", verb: "created" },
    async (tx) => {
      // Deleted since it was read: the ticket would be made under an event gone from every list.
      if (!await lockLiveEvent(tx, event.id)) {
        unprocessable("the event does not exist", "/data/relationships/event");
      }
      await requireFreeName(tx, event.id, values.name!);
      return await insertTicket(tx, values);
    },
  );
  return await renderWritten(ctx, call.caller, ticketDef, row, query, {
    req: call.req,
    status: 201,
  });
}

async function update(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { ticket, event } = await managedTicket(ctx, call);
  // Admins see trashed tickets with ?get_trashed=true, but only events are restored (and so
  // written) from the trash: a change to a deleted ticket would answer 200 and stay deleted.
  if (ticket.deleted_at !== null) notFound("ticket", call.req.params.id);
  const query = await writeQuery(ctx, call, ticketDef);
  const doc = parseResourceDocument(call.req.body, {
    type: "ticket",
    id: call.req.params.id,
    relationships: { event: { type: "event" } },
    known: ticketDef.relationships,
  });
  const ref = doc.relationships.event;
  // Its own event, named by id or identifier as on POST, is no move.
  const sameEvent = (key: string) => key === event.id || key === event.identifier;
  if (ref !== undefined && (Array.isArray(ref) || !ref || !sameEvent(ref.id))) {
    unprocessable("a ticket cannot move to another event", "/data/relationships/event");
  }
  const values = ticketValues(validateAttributes(ticketUpdateAttributes, doc.attributes));
  const row = await commit(
    ctx,
    call,
    {
      type: "ticket",
      verb: "updated",
      update: { table: "tickets", id: ticket.id, foundLive: ticket.deleted_at === null },
    },
    async (tx, locked) => {
      // The merged state as it is now, under the row's lock.
      const current = locked as TicketRow;
      // Its event trashed meanwhile (one reached in the trash by an admin stays writable).
      if (event.deleted_at === null && !await isLiveEvent(tx, current.event_id)) {
        notFound("ticket", call.req.params.id);
      }
      if (values.name !== undefined && values.name !== current.name) {
        await requireFreeName(tx, current.event_id, values.name, current.id);
      }
      checkTicket({
        type: current.type,
        price: current.price,
        sales_starts_at: current.sales_starts_at,
        sales_ends_at: current.sales_ends_at,
        ...values,
      });
      return await updateTicket(tx, ticket.id, values);
    },
  );
  return await renderWritten(ctx, call.caller, ticketDef, row, query, { req: call.req });
}

async function remove(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { ticket } = await managedTicket(ctx, call);
  const permanent = permanentDelete(call.caller, call.req.query);
  await commit(
    ctx,
    call,
    { type: "ticket", verb: "deleted", row: ticket, purged: permanent },
    (tx) => deleteTicket(tx, ticket.id, permanent),
  );
  return deletedReply;
}

async function related(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { event } = await managedTicket(ctx, call);
  return await renderRelatedOne(ctx, call, eventDef, event);
}

async function relationship(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const { ticket, event } = await managedTicket(ctx, call);
  const parent = { def: ticketDef, row: ticket };
  // Its event as `managedTicket` found it: in the trash too for an admin asking.
  const related = { def: eventDef, rows: event, trashed: withTrashed(call.caller, call.req.query) };
  return await renderLinkageShown(ctx, call.caller, parent, related, call.req);
}

export function ticketHandlers(ctx: CatalogContext) {
  return handleAll(ctx, {
    "tickets.list": list,
    "tickets.get": get,
    "tickets.create": create,
    "tickets.update": update,
    "tickets.delete": remove,
    "tickets.related": related,
    "tickets.relationship": relationship,
  });
}
