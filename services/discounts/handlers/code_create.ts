/**
 * What POST /v1/discount-codes needs before it inserts: who may create a code of this kind on
 * this event, and the new code's columns and links once every rule of rules.ts holds.
 */
import { requireActor, requireAdmin } from "@shared/handlers/mod.ts";
import { type ParsedResource, validateAttributes } from "@shared/jsonapi.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import {
  access,
  type Caller,
  type DiscountsContext,
  type EventAccess,
  requireCoorganizer,
} from "../context.ts";
import { formatCents } from "../money.ts";
import {
  checkCode,
  type CodeCreateAttributes,
  codeCreateAttributes,
  type CodeState,
  defaultMaxQuantity,
  defaultMinQuantity,
} from "../rules.ts";
import type { CodeValues } from "../store/codes.ts";
import {
  checkEvents,
  checkKindRelationships,
  eventIdsOf,
  many,
  one,
  ticketsOf,
  unprocessable,
} from "./code_input.ts";

/** Who creates the code, and the event a ticket code belongs to. */
export interface CodeOwner {
  caller: Caller;
  event: EventAccess | null;
}

/** Who may create a code of this kind on this event; returns the caller and the event. */
export async function createAccess(
  ctx: DiscountsContext,
  req: HttpRequest,
  doc: ParsedResource,
): Promise<CodeOwner> {
  const usedFor = doc.attributes["used-for"];
  if (usedFor === "event") {
    const { caller } = await access(ctx, req.actor);
    return { caller: requireAdmin(caller, "create an event discount code"), event: null };
  }
  if (usedFor !== "ticket") {
    // The attribute check of `newCode` reports the missing or wrong used-for.
    const { caller } = await access(ctx, req.actor);
    if (!caller) requireActor(req.actor);
    return { caller: caller!, event: null };
  }
  const ref = one(doc, "event");
  if (!ref) unprocessable("a ticket code needs its event", "/data/relationships/event");
  const { caller, event } = await access(ctx, req.actor, ref.id);
  if (!caller) requireActor(req.actor);
  if (!event) unprocessable(`event ${ref.id} does not exist`, "/data/relationships/event");
  requireCoorganizer(caller, event, "create a discount code for this event");
  return { caller: caller!, event };
}

/** A new code's columns and links, once its attributes and links pass every rule. */
export async function newCode(
  ctx: DiscountsContext,
  req: HttpRequest,
  options: { doc: ParsedResource; owner: CodeOwner },
): Promise<{ values: CodeValues; links: { ticketIds: string[]; eventIds: string[] } }> {
  const { doc, owner } = options;
  const attrs = validateAttributes(codeCreateAttributes, doc.attributes);
  const usedFor = attrs["used-for"];
  checkKindRelationships(doc, usedFor);
  const ticketIds = usedFor === "ticket" ? many(doc, "tickets") ?? [] : [];
  const eventIds = usedFor === "event" ? await eventIdsOf(ctx, req, many(doc, "events") ?? []) : [];
  const state = newState(attrs, owner.event?.id ?? null);
  checkCode(state, { requested: ticketIds, tickets: await ticketsOf(ctx, ticketIds) });
  if (eventIds.length) await checkEvents(ctx, req, { db: ctx.sql, eventIds });
  return { values: newValues(attrs, state, owner.caller.id), links: { ticketIds, eventIds } };
}

/** The state the rules check: the attributes sent, with the defaults of what was not. */
function newState(attrs: CodeCreateAttributes, eventId: string | null): CodeState {
  const ticketsNumber = attrs["tickets-number"] ?? null;
  const maxQuantity = attrs["max-quantity"] ?? defaultMaxQuantity(ticketsNumber);
  return {
    type: attrs.type,
    valueCents: attrs.value,
    ticketsNumber,
    minQuantity: attrs["min-quantity"] ?? defaultMinQuantity(maxQuantity),
    maxQuantity,
    maxQuantityDefaulted: attrs["max-quantity"] == null,
    validFrom: attrs["valid-from"] ?? null,
    validTill: attrs["valid-till"] ?? null,
    usedCount: 0,
    usedFor: attrs["used-for"],
    eventId,
  };
}

function newValues(attrs: CodeCreateAttributes, state: CodeState, marketerId: string): CodeValues {
  return {
    code: attrs.code,
    discount_url: attrs["discount-url"] ?? null,
    value: formatCents(attrs.value),
    type: attrs.type,
    is_active: attrs["is-active"] ?? true,
    tickets_number: state.ticketsNumber,
    min_quantity: state.minQuantity,
    max_quantity: state.maxQuantity,
    valid_from: state.validFrom,
    valid_till: state.validTill,
    used_for: state.usedFor,
    event_id: state.eventId,
    marketer_id: marketerId,
  };
}
