/**
 * `/v1/discount-codes`: ticket codes are managed by the co-organizers of their own event, event
 * codes by admins only (whatever relationships the body carries). Every rule of rules.ts is
 * applied to the merged state on PATCH; prices and ticket ownership come from the catalog.
 */
import { isId } from "@shared/schemas/ids.ts";
import { type Route, route } from "@shared/bus.ts";
import { ConflictError, ForbiddenError, UnprocessableError } from "@shared/errors.ts";
import { changeWithFact, unchanged } from "@shared/facts.ts";
import {
  deletedReply,
  type Identifier,
  type ParsedResource,
  parseResourceDocument,
  type RelationshipDef,
  validateAttributes,
} from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { catalogInternal, discounts } from "@shared/subjects.ts";
import {
  access,
  type Caller,
  type DiscountsContext,
  type EventAccess,
  isAdmin,
  requireAdmin,
  requireCoorganizer,
} from "../context.ts";
import { formatCents, toCents } from "../money.ts";
import { codeQuery, codeRelations } from "../resources.ts";
import {
  checkCode,
  codeCreateAttributes,
  type CodeState,
  type CodeUpdateAttributes,
  codeUpdateAttributes,
  type TicketInfo,
} from "../rules.ts";
import {
  type CodeValues,
  deleteCode,
  eventCodeOf,
  insertCode,
  listCodes,
  lockCode,
  type Row,
  updateCode,
} from "../store/codes.ts";
import {
  codeFact,
  guardCode,
  notFound,
  renderCode,
  renderCodes,
  renderRelated,
  requireActor,
  resolveCatalog,
  wantsPermanent,
} from "./common.ts";

const relationships: Record<string, RelationshipDef> = {
  event: { type: "event" },
  events: { type: "event", many: true },
  tickets: { type: "ticket", many: true },
  // Server-set (the creator): accepted so clients may echo it, never read.
  marketer: { type: "user" },
};

const MAX_LINKS = 1000;

function unprocessable(detail: string, pointer: string): never {
  throw new UnprocessableError(`Cannot save discount code: ${detail}`, { pointer });
}

function many(doc: ParsedResource, name: string): string[] | undefined {
  const value = doc.relationships[name] as Identifier[] | undefined;
  if (value === undefined) return undefined;
  if (value.length > MAX_LINKS) {
    unprocessable(`${name} takes at most ${MAX_LINKS} items`, `/data/relationships/${name}`);
  }
  return [...new Set(value.map((item) => item.id))];
}

function one(doc: ParsedResource, name: string): Identifier | null | undefined {
  return doc.relationships[name] as Identifier | null | undefined;
}

/** Relationships that do not belong to the kind: a ticket code has no `events`, and so on. */
function checkKindRelationships(doc: ParsedResource, usedFor: "event" | "ticket"): void {
  if (usedFor === "ticket") {
    if ((many(doc, "events") ?? []).length) {
      unprocessable(
        "a ticket code is not applied to events; use used-for event",
        "/data/relationships/events",
      );
    }
    return;
  }
  if (one(doc, "event")) {
    unprocessable(
      "an event code belongs to no event; apply it through events",
      "/data/relationships/event",
    );
  }
  if ((many(doc, "tickets") ?? []).length) {
    unprocessable("an event code takes no tickets", "/data/relationships/tickets");
  }
}

/** Attached tickets as the catalog knows them (unknown or deleted ones are missing). */
async function ticketsOf(ctx: DiscountsContext, ids: string[]): Promise<TicketInfo[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  const { tickets } = await ctx.bus.request(catalogInternal.tickets, { ids: valid });
  return tickets;
}

/** The events an event code is applied to: each must exist and hold no other event code. */
async function checkEvents(
  ctx: DiscountsContext,
  req: HttpRequest,
  eventIds: string[],
  codeId?: string,
): Promise<void> {
  const pointer = "/data/relationships/events";
  const found = new Set(
    (await resolveCatalog(ctx, req, "event", eventIds.filter(isId))).map((e) => String(e.id)),
  );
  for (const id of eventIds) {
    if (!found.has(id)) unprocessable(`event ${id} does not exist`, pointer);
    const current = await eventCodeOf(ctx.sql, id);
    if (current && String(current.id) !== codeId) {
      throw new ConflictError(
        `Cannot save discount code: event ${id} already has event discount code ${current.id}`,
        { pointer },
      );
    }
  }
}

function stateOf(row: Row): CodeState {
  return {
    type: row.type as "amount" | "percent",
    valueCents: toCents(String(row.value)) ?? 0,
    ticketsNumber: row.tickets_number === null ? null : Number(row.tickets_number),
    minQuantity: Number(row.min_quantity),
    maxQuantity: Number(row.max_quantity),
    validFrom: row.valid_from as Date | null,
    validTill: row.valid_till as Date | null,
    usedCount: Number(row.used_count),
    usedFor: row.used_for as "event" | "ticket",
    eventId: row.event_id === null ? null : String(row.event_id),
  };
}

/** The columns a PATCH writes: only the attributes sent (null resets to the default). */
function updateValues(attrs: CodeUpdateAttributes): CodeValues {
  const values: CodeValues = {};
  if (attrs.code !== undefined) values.code = attrs.code;
  if (attrs["discount-url"] !== undefined) values.discount_url = attrs["discount-url"];
  if (attrs.value !== undefined) values.value = formatCents(attrs.value);
  if (attrs.type !== undefined) values.type = attrs.type;
  if (attrs["is-active"] !== undefined) values.is_active = attrs["is-active"] ?? true;
  if (attrs["tickets-number"] !== undefined) values.tickets_number = attrs["tickets-number"];
  if (attrs["min-quantity"] !== undefined) values.min_quantity = attrs["min-quantity"] ?? 1;
  if (attrs["max-quantity"] !== undefined) values.max_quantity = attrs["max-quantity"] ?? 100;
  if (attrs["valid-from"] !== undefined) values.valid_from = attrs["valid-from"];
  if (attrs["valid-till"] !== undefined) values.valid_till = attrs["valid-till"];
  return values;
}

/** The stored state with a PATCH's values over it: what the rules check. */
function mergeState(
  current: CodeState,
  values: CodeValues,
  valueCents: number | undefined,
): CodeState {
  return {
    ...current,
    type: values.type ?? current.type,
    valueCents: valueCents ?? current.valueCents,
    ticketsNumber: values.tickets_number !== undefined
      ? values.tickets_number
      : current.ticketsNumber,
    minQuantity: values.min_quantity ?? current.minQuantity,
    maxQuantity: values.max_quantity ?? current.maxQuantity,
    validFrom: values.valid_from !== undefined ? values.valid_from : current.validFrom,
    validTill: values.valid_till !== undefined ? values.valid_till : current.validTill,
  };
}

/** Who may create a code of this kind on this event; returns the caller and the event. */
async function createAccess(
  ctx: DiscountsContext,
  req: HttpRequest,
  doc: ParsedResource,
): Promise<{ caller: Caller; event: EventAccess | null }> {
  const usedFor = doc.attributes["used-for"];
  if (usedFor === "event") {
    const { caller } = await access(ctx, req.actor);
    return { caller: requireAdmin(caller, "create an event discount code"), event: null };
  }
  if (usedFor !== "ticket") {
    // The attribute check below reports the missing or wrong used-for.
    const { caller } = await access(ctx, req.actor);
    if (!caller) requireActor(req);
    return { caller: caller!, event: null };
  }
  const ref = one(doc, "event");
  if (!ref) unprocessable("a ticket code needs its event", "/data/relationships/event");
  const { caller, event } = await access(ctx, req.actor, ref.id);
  if (!caller) requireActor(req);
  if (!event) unprocessable(`event ${ref.id} does not exist`, "/data/relationships/event");
  requireCoorganizer(caller, event, "create a discount code for this event");
  return { caller: caller!, event };
}

/** A change of one to-many relationship relative to the stored linkage (POST/DELETE). */
export interface LinkChange {
  name: "tickets" | "events";
  op: "add" | "remove";
  ids: string[];
}

export interface SaveCodeUpdateOptions {
  /** The code as `guardCode` read it, and the caller it allowed. */
  code: Row;
  caller: Caller;
  /** What to change: attributes and relationships a PATCH sent (replacing linkage). */
  doc: ParsedResource;
  /** Members added to or removed from the stored linkage, merged under the row lock. */
  change?: LinkChange;
}

function identifiers(type: string, ids: string[]): Identifier[] {
  return ids.map((id) => ({ type, id }));
}

/** `current` with `change` applied (its order kept, added ids last, no duplicates). */
function applyChange(current: string[], change: LinkChange): string[] {
  if (change.op === "remove") return current.filter((id) => !change.ids.includes(id));
  return [...new Set([...current, ...change.ids])];
}

/**
 * The one update path, shared by PATCH of the code and writes of its relationships: locks the
 * row, merges the change over what is stored, checks every rule on the result, writes it and
 * records the `updated` fact in the same transaction. The caller has checked permission.
 */
export async function saveCodeUpdate(
  ctx: DiscountsContext,
  req: HttpRequest,
  options: SaveCodeUpdateOptions,
): Promise<Row> {
  const { code, caller, doc, change } = options;
  const attrs = validateAttributes(codeUpdateAttributes, doc.attributes);
  const usedFor = code.used_for as "event" | "ticket";
  if (attrs["used-for"] !== undefined && attrs["used-for"] !== usedFor) {
    throw new ConflictError("Cannot save discount code: used-for never changes", {
      pointer: "/data/attributes/used-for",
    });
  }
  checkKindRelationships(doc, usedFor);
  if (change?.op === "add") {
    const type = change.name === "tickets" ? "ticket" : "event";
    checkKindRelationships({
      attributes: {},
      relationships: { [change.name]: identifiers(type, change.ids) },
    }, usedFor);
  }
  const eventRef = one(doc, "event");
  if (usedFor === "ticket" && eventRef !== undefined && eventRef?.id !== code.event_id) {
    unprocessable("a code cannot move to another event", "/data/relationships/event");
  }
  const requestedTickets = usedFor === "ticket" ? many(doc, "tickets") : undefined;
  const eventIds = usedFor === "event" ? many(doc, "events") : undefined;
  const ticketChange = usedFor === "ticket" && change?.name === "tickets" ? change : undefined;
  const eventChange = usedFor === "event" && change?.name === "events" ? change : undefined;
  const values = updateValues(attrs);
  // Prices come from the catalog before the transaction; tickets deleted meanwhile (not yet
  // detached by the catalog's facts) are not the client's fault.
  const stored = code.ticket_ids as string[];
  const asked = requestedTickets ?? (ticketChange ? applyChange(stored, ticketChange) : stored);
  const fetched = await ticketsOf(ctx, asked);
  if (eventIds?.length) await checkEvents(ctx, req, eventIds, String(code.id));
  if (eventChange?.op === "add") await checkEvents(ctx, req, eventChange.ids, String(code.id));
  const id = String(code.id);
  let before: Row | undefined;
  return await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx) => {
      // The rules hold for the row as it is now, not as it was read above: a concurrent
      // change waits here, then checks itself against what the first one stored.
      const locked = await lockCode(tx, id) ?? notFound("discount code", req.params.id);
      before = locked;
      let tickets = fetched;
      let requested = requestedTickets;
      if (!requested) {
        const attached = locked.ticket_ids as string[];
        const unseen = attached.filter((ticketId) => !asked.includes(ticketId));
        if (unseen.length) tickets = [...fetched, ...await ticketsOf(ctx, unseen)];
        const known = tickets.filter((ticket) => attached.includes(ticket.id)).map((t) => t.id);
        // Added ids stay even when unknown, so the rules below refuse them.
        requested = ticketChange ? applyChange(known, ticketChange) : known;
        tickets = tickets.filter((ticket) => requested!.includes(ticket.id));
        if (requested.length > MAX_LINKS) {
          unprocessable(`tickets takes at most ${MAX_LINKS} items`, "/data/relationships/tickets");
        }
      }
      const events = eventChange
        ? applyChange(locked.event_ids as string[], eventChange)
        : eventIds;
      if (events && events.length > MAX_LINKS) {
        unprocessable(`events takes at most ${MAX_LINKS} items`, "/data/relationships/events");
      }
      checkCode(mergeState(stateOf(locked), values, attrs.value), { requested, tickets });
      return await updateCode(tx, id, values, {
        ticketIds: requestedTickets ?? (ticketChange ? requested : undefined),
        eventIds: events,
      });
    },
    (row) => unchanged(before, row) ? null : codeFact(caller, "updated", row),
  );
}

export function codeRoutes(ctx: DiscountsContext): Route[] {
  const c = discounts.codes;
  return [
    route(c.list, async (req) => {
      requireActor(req);
      const { caller } = await access(ctx, req.actor);
      const admin = requireAdmin(caller, "list all discount codes");
      const query = parseListQuery(req.query, codeQuery);
      const result = await listCodes(ctx.sql, query, {
        withTrashed: query.extra.get_trashed === "true" && isAdmin(admin),
      });
      return renderCodes(result, req, query);
    }),
    route(c.get, async (req) => {
      const query = parseSingleQuery(req.query, codeQuery);
      const { code } = await guardCode(ctx, req, "see this discount code");
      return renderCode(code, req, { query });
    }),
    route(c.create, async (req) => {
      requireActor(req);
      const doc = parseResourceDocument(req.body, { type: "discount-code", relationships });
      const { caller, event } = await createAccess(ctx, req, doc);
      const attrs = validateAttributes(codeCreateAttributes, doc.attributes);
      const usedFor = attrs["used-for"];
      checkKindRelationships(doc, usedFor);
      const requested = usedFor === "ticket" ? many(doc, "tickets") ?? [] : [];
      const eventIds = usedFor === "event" ? many(doc, "events") ?? [] : [];
      const ticketsNumber = attrs["tickets-number"] ?? null;
      // Without an explicit max-quantity, the default (100) never exceeds the total uses.
      const maxQuantity = attrs["max-quantity"] ??
        (ticketsNumber === null ? 100 : Math.min(100, ticketsNumber));
      const minQuantity = attrs["min-quantity"] ?? Math.min(1, maxQuantity);
      const state: CodeState = {
        type: attrs.type,
        valueCents: attrs.value,
        ticketsNumber,
        minQuantity,
        maxQuantity,
        validFrom: attrs["valid-from"] ?? null,
        validTill: attrs["valid-till"] ?? null,
        usedCount: 0,
        usedFor,
        eventId: event?.id ?? null,
      };
      checkCode(state, { requested, tickets: await ticketsOf(ctx, requested) });
      if (eventIds.length) await checkEvents(ctx, req, eventIds);
      const values: CodeValues = {
        code: attrs.code,
        discount_url: attrs["discount-url"] ?? null,
        value: formatCents(attrs.value),
        type: attrs.type,
        is_active: attrs["is-active"] ?? true,
        tickets_number: ticketsNumber,
        min_quantity: minQuantity,
        max_quantity: maxQuantity,
        valid_from: state.validFrom,
        valid_till: state.validTill,
        used_for: usedFor,
        event_id: event?.id ?? null,
        marketer_id: caller.id,
      };
      const row = await changeWithFact(
        ctx.sql,
        ctx.relay,
        (tx) => insertCode(tx, values, { ticketIds: requested, eventIds }),
        (row) => codeFact(caller, "created", row),
      );
      return renderCode(row, req, { status: 201 });
    }),
    route(c.update, async (req) => {
      const target = await guardCode(ctx, req, "change this discount code");
      if (target.code.deleted_at) notFound("discount code", req.params.id);
      const doc = parseResourceDocument(req.body, {
        type: "discount-code",
        id: String(target.code.id),
        relationships,
      });
      const row = await saveCodeUpdate(ctx, req, { ...target, doc });
      return renderCode(row, req);
    }),
    route(c.delete, async (req) => {
      const { code, caller } = await guardCode(ctx, req, "delete this discount code");
      const permanent = wantsPermanent(req);
      if (permanent && !isAdmin(caller)) {
        throw new ForbiddenError("Cannot delete permanently: admins only");
      }
      if (code.deleted_at && !permanent) notFound("discount code", req.params.id);
      await changeWithFact(
        ctx.sql,
        ctx.relay,
        (tx) => deleteCode(tx, String(code.id), permanent),
        () => codeFact(caller, "deleted", { ...code, deleted_at: code.deleted_at ?? new Date() }),
      );
      return deletedReply;
    }),
    route(c.related, async (req) => {
      const rel = codeRelations[req.params.rel] ?? notFound("relationship", req.params.rel);
      parseSingleQuery(req.query, { extra: ["get_trashed"] });
      const { code } = await guardCode(ctx, req, "see this discount code");
      return await renderRelated(ctx, req, code, rel);
    }),
    route(c.relationship, async (req) => {
      const rel = codeRelations[req.params.rel] ?? notFound("relationship", req.params.rel);
      parseSingleQuery(req.query, { extra: ["get_trashed"] });
      const { code } = await guardCode(ctx, req, "see this discount code");
      const base = `/v1/discount-codes/${req.params.id}`;
      const value = code[rel.key];
      const data = rel.many
        ? [value ?? []].flat().map((id) => ({ type: rel.type, id: String(id) }))
        : value === null || value === undefined
        ? null
        : { type: rel.type, id: String(value) };
      return {
        status: 200,
        body: {
          data,
          links: {
            self: `${base}/relationships/${req.params.rel}`,
            related: `${base}/${req.params.rel}`,
          },
          jsonapi: { version: "1.0" },
        },
      };
    }),
  ];
}
