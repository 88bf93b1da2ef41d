/**
 * What buyers use without logging in: the checkout lookup of a code by its text, and the price
 * preview of an order (plain JSON, as the original). Money is computed in integer cents and
 * answered as two-decimal strings ("12.50") everywhere in the preview.
 */
import { isId } from "@shared/schemas/ids.ts";
import { type Route, route } from "@shared/bus.ts";
import { BadRequestError, NotFoundError, UnprocessableError } from "@shared/errors.ts";
import { validateAttributes } from "@shared/jsonapi.ts";
import { parseSingleQuery } from "@shared/query.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { lenientNumber } from "@shared/schemas/lenient.ts";
import { catalogInternal, discounts } from "@shared/subjects.ts";
import { z } from "zod";
import { access, type DiscountsContext } from "../context.ts";
import { formatCents, toCents, unitDiscount } from "../money.ts";
import { codeQuery } from "../resources.ts";
import { CODE_PATTERN } from "../rules.ts";
import { findByText, getCode, type Row } from "../store/codes.ts";
import { lookupProjected, rememberEvent } from "../store/events.ts";
import { renderCode } from "./common.ts";

/**
 * Why a code cannot be used right now, or undefined when it can. `uses`: also refuse a code
 * with no uses left (the lookup does; the preview says so in a warning instead).
 */
export function unusable(code: Row, options: { uses?: boolean } = {}): string | undefined {
  const now = new Date();
  if (!code.is_active) return "it is not active";
  const from = code.valid_from as Date | null;
  const till = code.valid_till as Date | null;
  if (from && from > now) return `it is not valid before ${from.toISOString()}`;
  if (till && till <= now) return `it expired at ${till.toISOString()}`;
  if (
    options.uses !== false && code.tickets_number !== null &&
    Number(code.used_count) >= Number(code.tickets_number)
  ) {
    return "it has no uses left";
  }
  return undefined;
}

/**
 * The checkout lookup. Anonymous callers are answered from the local projection of the
 * catalog's events when it knows the event as published (one query, no bus hop); otherwise, and
 * for every logged-in caller (who may see drafts they co-organize), the catalog is asked live.
 */
async function lookup(ctx: DiscountsContext, req: HttpRequest) {
  const query = parseSingleQuery(req.query, codeQuery);
  const text = req.params.code ?? "";
  const key = req.params.id ?? "";
  const readable = CODE_PATTERN.test(text);
  const projected = !req.actor && readable ? await lookupProjected(ctx.sql, key, text) : undefined;
  let code = projected?.code;
  if (!projected) {
    const { event } = await access(ctx, req.actor, key);
    if (!event) throw new NotFoundError(`Cannot find event ${JSON.stringify(key)}`);
    // An event the facts have not brought yet: the next anonymous lookup needs no hop.
    if (event.state === "published") await rememberEvent(ctx.sql, event);
    code = readable ? await findByText(ctx.sql, event.id, text) : undefined;
  }
  if (!code) {
    throw new NotFoundError(`Cannot find discount code ${JSON.stringify(text)} for this event`);
  }
  const why = unusable(code);
  if (why) {
    throw new UnprocessableError(`Cannot use discount code ${code.code}: ${why}`, {
      parameter: "code",
    });
  }
  return renderCode(code, req, { query });
}

const idText = z.union([z.string().max(32), z.number().int()]).transform(String);

const previewSchema = z.object({
  tickets: z.array(z.object({
    id: idText,
    quantity: lenientNumber(z.number().int().min(0).max(100_000)).default(1),
  })).min(1).max(100),
  /** The code by id (as the original's clients send it). */
  "discount-code": idText.nullish(),
  /** Or by its text, as the buyer typed it: looked up among the codes of the tickets' event. */
  code: z.string().max(64).nullish(),
});

function readPreview(body: unknown): z.infer<typeof previewSchema> {
  return validateAttributes(previewSchema, body, { base: "", action: "calculate the amount" });
}

interface PreviewCode {
  row: Row;
  /** Named by its text (not its id) in the request. */
  byText: boolean;
  pointer: string;
}

/**
 * One answer for every code the caller cannot use on these tickets (unknown id or text, another
 * event's code, an event code, a code attached to none of the tickets): ids cannot be probed.
 */
function notApplicable(pointer: string): never {
  throw new NotFoundError("Cannot apply the discount code: no such code for these tickets", {
    pointer,
  });
}

/** The code the preview applies, by id or by text among the codes of `eventId`. */
async function previewCode(
  ctx: DiscountsContext,
  input: z.infer<typeof previewSchema>,
  eventId: string,
): Promise<PreviewCode | undefined> {
  const ticketIds = input.tickets.map((ticket) => ticket.id);
  const id = input["discount-code"];
  const text = input.code;
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
  const applies = (row?.ticket_ids as string[] | undefined ?? []).some((ticketId) =>
    ticketIds.includes(ticketId)
  );
  if (!row || row.used_for !== "ticket" || String(row.event_id) !== eventId || !applies) {
    notApplicable(pointer);
  }
  const why = unusable(row, { uses: false });
  if (why) throw new UnprocessableError(`Cannot apply the discount code: ${why}`, { pointer });
  return { row, byText: hasText, pointer };
}

interface Line {
  id: string;
  price: number;
  quantity: number;
  free: boolean;
  attached: boolean;
}

async function calculate(ctx: DiscountsContext, req: HttpRequest) {
  if (req.body === undefined || req.body === null || typeof req.body !== "object") {
    throw new BadRequestError("Cannot calculate the amount: the body must be a JSON object");
  }
  const input = readPreview(req.body);
  const ids = input.tickets.map((t) => t.id);
  const duplicate = ids.findIndex((id, i) => ids.indexOf(id) !== i);
  if (duplicate >= 0) {
    throw new UnprocessableError(
      `Cannot calculate the amount: ticket ${ids[duplicate]} is listed twice`,
      { pointer: `/tickets/${duplicate}/id` },
    );
  }
  const valid = ids.filter(isId);
  const { tickets } = valid.length
    ? await ctx.bus.request(catalogInternal.tickets, { ids: valid })
    : { tickets: [] };
  const byId = new Map(tickets.map((t) => [t.id, t]));
  const missing = ids.findIndex((id) => !byId.has(id));
  if (missing >= 0) {
    throw new NotFoundError(`Cannot calculate the amount: ticket ${ids[missing]} does not exist`, {
      pointer: `/tickets/${missing}/id`,
    });
  }
  const events = new Set(tickets.map((t) => t.eventId));
  if (events.size > 1) {
    throw new UnprocessableError(
      "Cannot calculate the amount: the tickets belong to different events",
      { pointer: "/tickets" },
    );
  }
  const [eventId] = events;
  // Tickets of an event the caller may not see (a draft of someone else) do not exist for them.
  const { event } = await access(ctx, req.actor, eventId);
  if (!event) {
    throw new NotFoundError(`Cannot calculate the amount: ticket ${ids[0]} does not exist`, {
      pointer: "/tickets/0/id",
    });
  }

  const code = await previewCode(ctx, input, event.id);
  const attached = new Set((code?.row.ticket_ids as string[] | undefined) ?? []);
  const lines: Line[] = input.tickets.map(({ id, quantity }) => {
    const ticket = byId.get(id)!;
    return {
      id,
      price: ticket.type === "free" ? 0 : toCents(ticket.price) ?? 0,
      quantity,
      free: ticket.type === "free",
      attached: attached.has(id),
    };
  });
  const warnings: string[] = [];
  // Units the code could discount, then the limits that cap them. Warnings never name the code:
  // a caller who sent an id must not learn its text.
  const eligible = lines.reduce((n, l) => n + (l.attached && !l.free ? l.quantity : 0), 0);
  let budget = 0;
  if (code) {
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
    } else {
      budget = Math.min(eligible, max, remaining);
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
    }
  }

  let net = 0n;
  let totalDiscount = 0n;
  const out = lines.map((line) => {
    const gross = BigInt(line.price) * BigInt(line.quantity);
    let discount = null;
    let lineNet = gross;
    if (code && line.attached && !line.free && budget > 0 && line.quantity > 0) {
      const units = Math.min(line.quantity, budget);
      budget -= units;
      const row = code.row;
      const perUnit = unitDiscount(line.price, {
        type: row.type as "amount" | "percent",
        valueCents: toCents(String(row.value)) ?? 0,
      });
      const total = BigInt(perUnit) * BigInt(units);
      totalDiscount += total;
      lineNet = gross - total;
      discount = {
        // The text only when the caller sent it (they know it); by id, null.
        code: code.byText ? row.code : null,
        type: row.type,
        value: formatCents(toCents(String(row.value)) ?? 0),
        amount: formatCents(perUnit),
        quantity: units,
        total: formatCents(total),
      };
    }
    net += lineNet;
    return {
      id: line.id,
      price: formatCents(line.price),
      quantity: line.quantity,
      discount,
      sub_total: formatCents(lineNet),
    };
  });
  return {
    status: 200,
    body: {
      tickets: out,
      // As the original: sub_total is after the discount and before tax; we charge no tax.
      sub_total: formatCents(net),
      discount: formatCents(totalDiscount),
      total: formatCents(net),
      tax: null,
      warnings,
    },
  };
}

export function checkoutRoutes(ctx: DiscountsContext): Route[] {
  return [
    route(discounts.lookup, (req) => lookup(ctx, req)),
    route(discounts.calculateAmount, (req) => calculate(ctx, req)),
  ];
}
