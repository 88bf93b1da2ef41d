/**
 * `POST /v1/orders/calculate-amount`: the price preview of an order, plain JSON as the original
 * takes and answers it. Money is computed in integer cents and answered as two-decimal strings
 * ("12.50") everywhere. Warnings never name the code: a caller who sent an id must not learn its
 * text.
 */
import { BadRequestError, NotFoundError, UnprocessableError } from "@shared/errors.ts";
import { isId } from "@shared/handlers/mod.ts";
import { validateAttributes } from "@shared/jsonapi.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { lenientNumber } from "@shared/schemas/lenient.ts";
import { catalogInternal } from "@shared/subjects.ts";
import { z } from "zod";
import { access, accessMany, type DiscountsContext, type EventAccess } from "../context.ts";
import { formatCents, toCents, unitDiscount } from "../money.ts";
import { CODE_PATTERN, type TicketInfo } from "../rules.ts";
import { type CodeRow, findByText, getCode } from "../store/codes.ts";
import { unusable } from "./checkout.ts";

/**
 * A row id as text or as a JSON number. Ids are bigints of up to 18 digits (`isId`): text that is
 * none names no row (a 404 further on). A number past 2^53 - 1 is not read exactly (9007199254740993
 * arrives as ...992, another id), so such a one is asked for as text: `int()` answered it (and
 * 1e300) "must be at most 9007199254740991", a maximum ids do not have (a review).
 */
const idText = z.union([
  z.string().max(32),
  // One check, not two: a union reports an option's issues only when none of them aborts.
  z.number().refine(Number.isSafeInteger, {
    error: (issue) =>
      Number.isInteger(issue.input)
        ? "is too large to be read exactly as a JSON number: send it as text"
        : "must be a whole number",
  }),
]).transform(String);

/** Most tickets of one line a preview prices. */
const MAX_LINE_QUANTITY = 100_000;
// The bounds first, each stopping the checks: int() first answered a huge number (1e300) with its
// own limit (2^53 - 1), a first error naming a maximum that is not ours (a review).
const lineQuantity = lenientNumber(
  z.number().min(0, { abort: true }).max(MAX_LINE_QUANTITY, { abort: true }).int(),
);

const previewSchema = z.object({
  tickets: z.array(z.object({
    id: idText,
    quantity: lineQuantity.default(1),
    /**
     * What the buyer gives for a donation ticket (text or number, at most two decimals): the
     * original priced a donation line at it. Ignored for other tickets, as there.
     */
    price: z.union([z.string().max(32), z.number()]).nullish(),
  })).min(1).max(100),
  /** The code by id (as the original's clients send it). */
  "discount-code": idText.nullish(),
  /** Or by its text, as the buyer typed it: looked up among the codes of the tickets' event. */
  code: z.string().max(64).nullish(),
});

type PreviewInput = z.infer<typeof previewSchema>;

interface PreviewCode {
  row: CodeRow;
  /** Named by its text (not its id) in the request. */
  byText: boolean;
  pointer: string;
}

interface Line {
  id: string;
  price: number;
  quantity: number;
  free: boolean;
  attached: boolean;
}

export async function calculateAmount(
  ctx: DiscountsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  const input = readPreview(req.body);
  const { tickets, event } = await previewTickets(ctx, req, input);
  const code = await previewCode(ctx, input, event.id);
  const attached = new Set(code?.row.ticket_ids ?? []);
  const lines: Line[] = input.tickets.map(({ id, quantity, price }, index) => {
    const ticket = tickets.get(id)!;
    return {
      id,
      price: linePrice(ticket, price, index),
      quantity,
      free: ticket.type === "free",
      attached: attached.has(id),
    };
  });
  const { budget, warnings } = discountBudget(code, lines);
  return { status: 200, body: { ...priceLines(lines, code, budget), tax: null, warnings } };
}

/**
 * A line's unit price in cents: the ticket's, but for a donation what the buyer gives when they
 * say (above 0, at most two decimals: 422 otherwise, as the original refused a donation price
 * it could not take). Without one, a donation line is priced at the ticket's own price.
 */
function linePrice(ticket: TicketInfo, given: string | number | null | undefined, index: number) {
  if (ticket.type === "free") return 0;
  if (ticket.type !== "donation" || given === undefined || given === null) {
    return toCents(ticket.price) ?? 0;
  }
  const cents = toCents(given);
  if (cents === undefined || cents === 0) {
    throw new UnprocessableError(
      "Cannot calculate the amount: a donation's price must be an amount above 0 with at most " +
        "two decimals",
      { pointer: `/tickets/${index}/price` },
    );
  }
  return cents;
}

/** The request, validated; a ticket listed twice is refused. */
function readPreview(body: unknown): PreviewInput {
  if (body === undefined || body === null || typeof body !== "object") {
    throw new BadRequestError("Cannot calculate the amount: the body must be a JSON object");
  }
  const input = validateAttributes(previewSchema, body, {
    base: "",
    action: "calculate the amount",
  });
  const ids = input.tickets.map((t) => t.id);
  const duplicate = ids.findIndex((id, i) => ids.indexOf(id) !== i);
  if (duplicate >= 0) {
    throw new UnprocessableError(
      `Cannot calculate the amount: ticket ${ids[duplicate]} is listed twice`,
      { pointer: `/tickets/${duplicate}/id` },
    );
  }
  return input;
}

/** The tickets as the catalog knows them, all of one event the caller may see. */
async function previewTickets(
  ctx: DiscountsContext,
  req: HttpRequest,
  input: PreviewInput,
): Promise<{ tickets: Map<string, TicketInfo>; event: EventAccess }> {
  const ids = input.tickets.map((t) => t.id);
  const valid = ids.filter(isId);
  const { tickets } = valid.length
    ? await ctx.bus.request(catalogInternal.tickets, { ids: valid })
    : { tickets: [] };
  const byId = new Map(tickets.map((t) => [t.id, t]));
  const eventIds = [...new Set(tickets.map((t) => t.eventId))];
  const events = await visibleEvents(ctx, req, eventIds);
  // A ticket of an event the caller may not see (a draft of someone else) does not exist for
  // them: one pass over both, before any other rule, so that nothing tells the two apart (a
  // review: the one-event rule's 422, and a known-bad id after a draft's, did).
  const unknown = ids.findIndex((id) => {
    const ticket = byId.get(id);
    return !ticket || !events.get(ticket.eventId);
  });
  if (unknown >= 0) {
    throw new NotFoundError(`Cannot calculate the amount: ticket ${ids[unknown]} does not exist`, {
      pointer: `/tickets/${unknown}/id`,
    });
  }
  if (eventIds.length > 1) {
    throw new UnprocessableError(
      "Cannot calculate the amount: the tickets belong to different events",
      { pointer: "/tickets" },
    );
  }
  return { tickets: byId, event: events.get(eventIds[0])! };
}

/** Each of these events as the caller may see it (null: not at all), asked of the catalog once. */
async function visibleEvents(
  ctx: DiscountsContext,
  req: HttpRequest,
  eventIds: string[],
): Promise<Map<string, EventAccess | null>> {
  if (eventIds.length === 0) return new Map();
  if (eventIds.length > 1) return (await accessMany(ctx, req.actor, eventIds)).events;
  const { event } = await access(ctx, req.actor, eventIds[0]);
  return new Map([[eventIds[0], event]]);
}

/**
 * One answer for every code that is no ticket code of these tickets' event (unknown id or text,
 * another event's code, an event code): ids cannot be probed across events. A code of the event
 * that covers none of the tickets is no such answer: the tickets are public, so sending them all
 * would tell it anyway. It prices the order in full with a warning (`discountBudget`), as too few
 * covered tickets for min-quantity do (the original refused both: 422 "Discount Usage
 * Exceeded"); open-event-frontend's order summary sends the applied code with every ticket.
 */
function notApplicable(pointer: string): never {
  throw new NotFoundError("Cannot apply the discount code: no such code for these tickets", {
    pointer,
  });
}

/** The code the preview applies, by id or by text among the codes of `eventId`. */
async function previewCode(
  ctx: DiscountsContext,
  input: PreviewInput,
  eventId: string,
): Promise<PreviewCode | undefined> {
  const id = input["discount-code"];
  // Trimmed, as the code's text was when it was created (a pasted code brings spaces along).
  const text = input.code?.trim();
  const hasId = id !== undefined && id !== null;
  const hasText = text !== undefined && text !== null;
  if (hasId && hasText) {
    throw new UnprocessableError(
      "Cannot calculate the amount: send either discount-code (an id) or code (a text)",
      { pointer: "/code" },
    );
  }
  if (!hasId && !hasText) return undefined;
  const pointer = hasText ? "/code" : "/discount-code";
  const row = hasText
    ? (CODE_PATTERN.test(text) ? await findByText(ctx.sql, eventId, text) : undefined)
    : await getCode(ctx.sql, id!);
  if (!row || row.used_for !== "ticket" || String(row.event_id) !== eventId) {
    notApplicable(pointer);
  }
  const why = unusable(row);
  if (why) throw new UnprocessableError(`Cannot apply the discount code: ${why}`, { pointer });
  return { row, byText: hasText, pointer };
}

/** Units the code may discount in this order (its limits cap them), and why fewer than asked. */
function discountBudget(
  code: PreviewCode | undefined,
  lines: Line[],
): { budget: number; warnings: string[] } {
  const warnings: string[] = [];
  if (!code) return { budget: 0, warnings };
  if (!lines.some((line) => line.attached)) {
    warnings.push("The discount code applies to none of these tickets: no discount applied.");
    return { budget: 0, warnings };
  }
  const eligible = lines.reduce((n, l) => n + (l.attached && !l.free ? l.quantity : 0), 0);
  const min = Number(code.row.min_quantity);
  const max = Number(code.row.max_quantity);
  const remaining = code.row.tickets_number === null
    ? Infinity
    : Number(code.row.tickets_number) - Number(code.row.used_count);
  if (eligible < min) {
    warnings.push(
      `The discount code needs at least ${min} discounted tickets (min-quantity); ` +
        `this order has ${eligible}: no discount applied.`,
    );
    return { budget: 0, warnings };
  }
  const budget = Math.min(eligible, max, remaining);
  // min <= max always (a constraint), so only the uses left can bring the budget below min, and
  // a reservation of fewer than min is refused: the order pays full price, as it would there.
  if (budget < min) {
    warnings.push(
      `The discount code has ${remaining} uses left, fewer than the ${min} discounted tickets ` +
        `it needs (min-quantity): no discount applied.`,
    );
    return { budget: 0, warnings };
  }
  if (max < eligible) {
    warnings.push(
      `The discount code discounts at most ${max} tickets per order ` +
        `(max-quantity): ${eligible - budget} tickets are at full price.`,
    );
  }
  if (remaining < Math.min(eligible, max)) {
    warnings.push(
      `The discount code has ${remaining} uses left: ` +
        `${eligible - budget} tickets are at full price.`,
    );
  }
  return { budget, warnings };
}

/**
 * Each line's price, discounting up to `budget` units in order, and the order's totals. A line of
 * a ticket the code covers has its `discount` (per unit, and how many units took it, maybe 0);
 * other lines have null.
 */
function priceLines(lines: Line[], code: PreviewCode | undefined, budget: number) {
  let left = budget;
  let net = 0n;
  let totalDiscount = 0n;
  const tickets = lines.map((line) => {
    const gross = BigInt(line.price) * BigInt(line.quantity);
    const units = code && line.attached && !line.free && line.quantity > 0
      ? Math.max(0, Math.min(line.quantity, left))
      : 0;
    left -= units;
    // Every line the code covers carries its discount, with 0 units when the code's limits leave
    // the line at full price (or the ticket was made free since it was attached): the original's
    // clients read `discount.amount` of each covered line.
    const discount = code && line.attached ? discountOf(code, line, units) : null;
    const lineNet = gross - (discount?.cents ?? 0n);
    totalDiscount += discount?.cents ?? 0n;
    net += lineNet;
    return {
      id: line.id,
      price: formatCents(line.price),
      quantity: line.quantity,
      discount: discount?.shown ?? null,
      sub_total: formatCents(lineNet),
    };
  });
  // As the original: sub_total is after the discount and before tax; we charge no tax.
  return {
    tickets,
    sub_total: formatCents(net),
    discount: formatCents(totalDiscount),
    total: formatCents(net),
  };
}

/** The discount of `units` units of a line, in cents and as shown. */
function discountOf(code: PreviewCode, line: Line, units: number) {
  const row = code.row;
  const valueCents = toCents(row.value) ?? 0;
  const perUnit = unitDiscount(line.price, { type: row.type, valueCents });
  const cents = BigInt(perUnit) * BigInt(units);
  return {
    cents,
    shown: {
      // The text only when the caller sent it (they know it); by id, null.
      code: code.byText ? row.code : null,
      type: row.type,
      value: formatCents(valueCents),
      amount: formatCents(perUnit),
      quantity: units,
      total: formatCents(cents),
    },
  };
}
