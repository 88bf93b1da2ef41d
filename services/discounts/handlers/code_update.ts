/**
 * The one update path of a discount code, shared by PATCH of the code and writes of its
 * relationships: checks what can be checked before the transaction (the document, the catalog's
 * tickets and events), then locks the row, merges the change over what is stored, checks every
 * rule on the result, writes it and records the `updated` fact in the same transaction.
 */
import { ConflictError } from "@shared/errors.ts";
import { notFound } from "@shared/handlers/mod.ts";
import { changeWithFact, unchanged } from "@shared/facts.ts";
import { type ParsedResource, validateAttributes } from "@shared/jsonapi.ts";
import type { Queryable } from "@shared/db.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import type { Caller, DiscountsContext } from "../context.ts";
import { formatCents, toCents } from "../money.ts";
import {
  checkCode,
  type CodeState,
  type CodeUpdateAttributes,
  codeUpdateAttributes,
  defaultMaxQuantity,
  defaultMinQuantity,
  type TicketInfo,
} from "../rules.ts";
import { type CodeRow, type CodeValues, lockCode, updateCode } from "../store/codes.ts";
import {
  checkEvents,
  checkKindRelationships,
  checkStillNamed,
  eventIdsOf,
  many,
  MAX_LINKS,
  one,
  ticketsOf,
  unprocessable,
} from "./code_input.ts";
import { codeFact } from "./common.ts";
import { changedCodeNames } from "../fact_payloads.ts";

/** A change of one to-many relationship relative to the stored linkage (POST/DELETE). */
export interface LinkChange {
  name: "tickets" | "events";
  op: "add" | "remove";
  ids: string[];
}

export interface SaveCodeUpdateOptions {
  /** The code as `guardCode` read it, and the caller it allowed. */
  code: CodeRow;
  caller: Caller;
  /** What to change: attributes and relationships a PATCH sent (replacing linkage). */
  doc: ParsedResource;
  /** Members added to or removed from the stored linkage, merged under the row lock. */
  change?: LinkChange;
}

/** What an update writes, as far as it is known before the row is locked. */
interface UpdatePlan {
  id: string;
  /** The `value` sent, in cents. */
  valueCents: number | undefined;
  values: CodeValues;
  /** The quantities sent as null: reset to the defaults of the merged state (`withDefaults`). */
  resets: QuantityResets;
  /** The tickets a PATCH replaces the linkage with. */
  requestedTickets?: string[];
  /** The events a PATCH applies an event code to. */
  eventIds?: string[];
  ticketChange?: LinkChange;
  eventChange?: LinkChange;
  /** The tickets fetched from the catalog before the transaction, and which ones were asked. */
  asked: string[];
  fetched: TicketInfo[];
}

/**
 * Saves a change of a code (the caller has checked permission) and answers the code as stored.
 * The rules hold for the row as it is under the lock, not as it was read: a concurrent change
 * waits, then checks itself against what the first one stored.
 */
export async function saveCodeUpdate(
  ctx: DiscountsContext,
  req: HttpRequest,
  options: SaveCodeUpdateOptions,
): Promise<CodeRow> {
  const early = await planUpdate(ctx, req, options);
  const { code } = options;
  const events = namedEvents(early);
  let before: CodeRow | undefined;
  return await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx) => {
      await checkStillNamed(ctx, req, tx, {
        locks: {
          events: [...(code.event_id === null ? [] : [String(code.event_id)]), ...events],
          tickets: early.asked,
        },
        events,
        codeId: code.id,
      });
      // The tickets as the catalog knows them now, under their locks: one deleted since the plan
      // is unknown to the rules (a 422 when asked for, dropped when only kept), never put back.
      const plan = { ...early, fetched: await ticketsOf(ctx, early.asked) };
      // Trashed with its event meanwhile: lockCode finds it no more (404).
      const locked = await lockCode(tx, plan.id) ?? notFound("discount code", req.params.id);
      before = locked;
      return await writeUpdate(ctx, tx, locked, plan);
    },
    (row) =>
      unchanged(before, row)
        ? null
        : codeFact(options.caller, "updated", row, changedCodeNames(before!, row)),
  );
}

/** What the document may not do to this code: change its kind, move it, mix kinds' links. */
function checkShape(code: CodeRow, doc: ParsedResource, attrs: CodeUpdateAttributes): void {
  if (attrs["used-for"] !== undefined && attrs["used-for"] !== code.used_for) {
    throw new ConflictError("Cannot save discount code: used-for never changes", {
      pointer: "/data/attributes/used-for",
    });
  }
  checkKindRelationships(doc, code.used_for);
}

/** Checks the request against the code as read, and fetches what the rules need. */
async function planUpdate(
  ctx: DiscountsContext,
  req: HttpRequest,
  { code, doc, change }: SaveCodeUpdateOptions,
): Promise<UpdatePlan> {
  const attrs = validateAttributes(codeUpdateAttributes, doc.attributes);
  const usedFor = code.used_for;
  checkShape(code, doc, attrs);
  if (change?.op === "add") {
    const type = change.name === "tickets" ? "ticket" : "event";
    const added = change.ids.map((id) => ({ type, id }));
    checkKindRelationships({ attributes: {}, relationships: { [change.name]: added } }, usedFor);
  }
  await checkOwnEvent(ctx, req, { code, doc });
  const requestedTickets = usedFor === "ticket" ? many(doc, "tickets") : undefined;
  const ticketChange = usedFor === "ticket" && change?.name === "tickets" ? change : undefined;
  const values = updateValues(attrs);
  // Prices come from the catalog before the transaction; tickets deleted meanwhile (not yet
  // detached by the catalog's facts) are not the client's fault.
  const stored = code.ticket_ids;
  const asked = requestedTickets ?? (ticketChange ? applyChange(stored, ticketChange) : stored);
  const fetched = await ticketsOf(ctx, asked);
  return {
    id: code.id,
    valueCents: attrs.value,
    values,
    resets: { min: attrs["min-quantity"] === null, max: attrs["max-quantity"] === null },
    requestedTickets,
    ...await plannedEvents(ctx, req, { code, doc, change }),
    ticketChange,
    asked,
    fetched,
  };
}

/** A ticket code's `event`, when sent, names its own event (by id or identifier): it never moves. */
async function checkOwnEvent(
  ctx: DiscountsContext,
  req: HttpRequest,
  { code, doc }: Pick<SaveCodeUpdateOptions, "code" | "doc">,
): Promise<void> {
  const ref = one(doc, "event");
  if (code.used_for !== "ticket" || ref === undefined) return;
  const [id] = ref === null ? [] : await eventIdsOf(ctx, req, [ref.id]);
  if (id !== code.event_id) {
    unprocessable("a code cannot move to another event", "/data/relationships/event");
  }
}

/** The events a write of an event code names, as ids (`eventIdsOf`), checked as far as can be. */
async function plannedEvents(
  ctx: DiscountsContext,
  req: HttpRequest,
  { code, doc, change }: Omit<SaveCodeUpdateOptions, "caller">,
): Promise<Pick<UpdatePlan, "eventIds" | "eventChange">> {
  if (code.used_for !== "event") return {};
  const sent = many(doc, "events");
  const eventIds = sent && await eventIdsOf(ctx, req, sent);
  const eventChange = change?.name === "events"
    ? { ...change, ids: await eventIdsOf(ctx, req, change.ids) }
    : undefined;
  const codeId = code.id;
  if (eventIds?.length) await checkEvents(ctx, req, { db: ctx.sql, eventIds, codeId });
  if (eventChange?.op === "add") {
    await checkEvents(ctx, req, { db: ctx.sql, eventIds: eventChange.ids, codeId });
  }
  return { eventIds, eventChange };
}

/** Under the row lock: the linkage that results, checked with every rule, then written. */
async function writeUpdate(
  ctx: DiscountsContext,
  tx: Queryable,
  locked: CodeRow,
  plan: UpdatePlan,
): Promise<CodeRow> {
  const { requested, tickets } = plan.requestedTickets
    ? { requested: plan.requestedTickets, tickets: plan.fetched }
    : await lockedTickets(ctx, locked, plan);
  const events = plan.eventChange ? applyChange(locked.event_ids, plan.eventChange) : plan.eventIds;
  if (events && events.length > MAX_LINKS) {
    unprocessable(`events takes at most ${MAX_LINKS} items`, "/data/relationships/events");
  }
  const current = stateOf(locked);
  const values = withDefaults(current, plan.values, plan.resets);
  // A max-quantity reset by null is the default, and a 422 names it so, as on POST.
  const merged = {
    ...mergeState(current, values, plan.valueCents),
    maxQuantityDefaulted: plan.resets.max,
  };
  const termsChanged = merged.valueCents !== current.valueCents || merged.type !== current.type;
  checkCode(merged, { requested, tickets, kept: locked.ticket_ids, termsChanged });
  return await updateCode(tx, plan.id, values, {
    ticketIds: plan.requestedTickets ?? (plan.ticketChange ? requested : undefined),
    eventIds: events,
    namedEvents: namedEvents(plan),
  });
}

/** The events an update names (replaced, or added): each asked again under its lock. */
function namedEvents(plan: Pick<UpdatePlan, "eventIds" | "eventChange">): string[] {
  return plan.eventIds ?? (plan.eventChange?.op === "add" ? plan.eventChange.ids : []);
}

/**
 * The tickets attached under the lock (with a POST's or DELETE's change applied), and what the
 * catalog knows of them. Attached ids the catalog no longer knows are dropped; added ids stay
 * even when unknown, so the rules refuse them.
 */
async function lockedTickets(
  ctx: DiscountsContext,
  locked: CodeRow,
  plan: UpdatePlan,
): Promise<{ requested: string[]; tickets: TicketInfo[] }> {
  const attached = locked.ticket_ids;
  const unseen = attached.filter((ticketId) => !plan.asked.includes(ticketId));
  const all = unseen.length ? [...plan.fetched, ...await ticketsOf(ctx, unseen)] : plan.fetched;
  const known = all.filter((ticket) => attached.includes(ticket.id)).map((t) => t.id);
  const requested = plan.ticketChange ? applyChange(known, plan.ticketChange) : known;
  if (requested.length > MAX_LINKS) {
    unprocessable(`tickets takes at most ${MAX_LINKS} items`, "/data/relationships/tickets");
  }
  return { requested, tickets: all.filter((ticket) => requested.includes(ticket.id)) };
}

/** `current` with `change` applied (its order kept, added ids last, no duplicates). */
function applyChange(current: string[], change: LinkChange): string[] {
  if (change.op === "remove") return current.filter((id) => !change.ids.includes(id));
  return [...new Set([...current, ...change.ids])];
}

function stateOf(row: CodeRow): CodeState {
  return {
    type: row.type,
    valueCents: toCents(row.value) ?? 0,
    ticketsNumber: row.tickets_number,
    minQuantity: row.min_quantity,
    maxQuantity: row.max_quantity,
    validFrom: row.valid_from,
    validTill: row.valid_till,
    usedCount: row.used_count,
    usedFor: row.used_for,
    eventId: row.event_id,
  };
}

/** Which of min-quantity and max-quantity a PATCH sent as null. */
interface QuantityResets {
  min: boolean;
  max: boolean;
}

/**
 * `values` with the quantities sent as null set to the defaults POST gives a code that names
 * none (rules.ts), of the state they are merged into: a max-quantity reset on a code with
 * `tickets-number` 10 is 10, not 100. Until 2026-12-03 a null here was always 100 (and 1), so
 * the very attributes POST took (`tickets-number` 10, `max-quantity` null) were a 422 on PATCH,
 * citing a limit the client never sent (found by a review).
 */
function withDefaults(
  current: CodeState,
  values: CodeValues,
  resets: QuantityResets,
): CodeValues {
  const out = { ...values };
  if (resets.max) {
    const ticketsNumber = values.tickets_number !== undefined
      ? values.tickets_number
      : current.ticketsNumber;
    out.max_quantity = defaultMaxQuantity(ticketsNumber);
  }
  if (resets.min) out.min_quantity = defaultMinQuantity(out.max_quantity ?? current.maxQuantity);
  return out;
}

/**
 * The columns a PATCH writes: only the attributes sent (null resets to the default; the
 * quantities' defaults depend on the merged state, `withDefaults` sets them under the lock).
 */
function updateValues(attrs: CodeUpdateAttributes): CodeValues {
  const values: CodeValues = {};
  if (attrs.code !== undefined) values.code = attrs.code;
  if (attrs["discount-url"] !== undefined) values.discount_url = attrs["discount-url"];
  if (attrs.value !== undefined) values.value = formatCents(attrs.value);
  if (attrs.type !== undefined) values.type = attrs.type;
  if (attrs["is-active"] !== undefined) values.is_active = attrs["is-active"];
  if (attrs["tickets-number"] !== undefined) values.tickets_number = attrs["tickets-number"];
  if (typeof attrs["min-quantity"] === "number") values.min_quantity = attrs["min-quantity"];
  if (typeof attrs["max-quantity"] === "number") values.max_quantity = attrs["max-quantity"];
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
