/**
 * What buyers use without logging in: the checkout lookup of a code by its text, and the price
 * preview of an order (plain JSON, as the original). Money is computed in integer cents and
 * answered as two-decimal strings ("12.50") everywhere in the preview.
 */
import { type Route, route } from "@shared/bus.ts";
import { BadRequestError, NotFoundError, UnprocessableError } from "@shared/errors.ts";
import { parseSingleQuery } from "@shared/query.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { catalogInternal, discounts } from "@shared/subjects.ts";
import { z } from "zod";
import { access, type DiscountsContext } from "../context.ts";
import { formatCents, toCents, unitDiscount } from "../money.ts";
import { codeQuery } from "../resources.ts";
import { CODE_PATTERN } from "../rules.ts";
import { findByText, getCode, isId, type Row } from "../store/codes.ts";
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

async function lookup(ctx: DiscountsContext, req: HttpRequest) {
  const query = parseSingleQuery(req.query, codeQuery);
  const text = req.params.code ?? "";
  const { event } = await access(ctx, req.actor, req.params.id);
  if (!event) throw new NotFoundError(`Cannot find event ${JSON.stringify(req.params.id)}`);
  const code = CODE_PATTERN.test(text) ? await findByText(ctx.sql, event.id, text) : undefined;
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
    quantity: z.number().int().min(0).max(100_000).default(1),
  })).max(100),
  "discount-code": idText.nullish(),
});

function readPreview(body: unknown): z.infer<typeof previewSchema> {
  const result = previewSchema.safeParse(body);
  if (result.success) return result.data;
  const [first, ...rest] = result.error.issues.map((issue) => ({
    status: "422",
    code: "unprocessable_entity",
    title: "Unprocessable entity",
    detail: `Cannot calculate the amount: ${
      issue.path.length ? issue.path.join(".") : "the body"
    } is invalid (${issue.message})`,
    source: { pointer: `/${issue.path.map(String).join("/")}` },
  }));
  throw new UnprocessableError(first.detail, { pointer: first.source.pointer, more: rest });
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

  let code: Row | undefined;
  const codeId = input["discount-code"];
  if (codeId !== undefined && codeId !== null) {
    code = await getCode(ctx.sql, codeId);
    if (!code) {
      throw new NotFoundError(`Cannot find discount code ${JSON.stringify(codeId)}`, {
        pointer: "/discount-code",
      });
    }
    const pointer = { pointer: "/discount-code" };
    if (code.used_for !== "ticket") {
      throw new UnprocessableError(
        "Cannot apply the discount code: an event code does not discount tickets",
        pointer,
      );
    }
    if (events.size && !events.has(String(code.event_id))) {
      throw new UnprocessableError(
        "Cannot apply the discount code: it belongs to another event",
        pointer,
      );
    }
    const why = unusable(code, { uses: false });
    if (why) {
      throw new UnprocessableError(`Cannot apply discount code ${code.code}: ${why}`, pointer);
    }
  }

  const attached = new Set((code?.ticket_ids as string[] | undefined) ?? []);
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
  // Units the code could discount, then the limits that cap them.
  const eligible = lines.reduce((n, l) => n + (l.attached && !l.free ? l.quantity : 0), 0);
  let budget = 0;
  if (code) {
    const min = Number(code.min_quantity);
    const max = Number(code.max_quantity);
    const remaining = code.tickets_number === null
      ? Infinity
      : Number(code.tickets_number) - Number(code.used_count);
    if (eligible === 0) {
      warnings.push(`Discount code ${code.code} applies to none of these tickets.`);
    } else if (eligible < min) {
      warnings.push(
        `Discount code ${code.code} needs at least ${min} discounted tickets (min-quantity); ` +
          `this order has ${eligible}: no discount applied.`,
      );
    } else {
      budget = Math.min(eligible, max, remaining);
      if (max < eligible) {
        warnings.push(
          `Discount code ${code.code} discounts at most ${max} tickets per order ` +
            `(max-quantity): ${eligible - budget} tickets are at full price.`,
        );
      }
      if (remaining < Math.min(eligible, max)) {
        warnings.push(
          `Discount code ${code.code} has ${remaining} uses left: ` +
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
      const perUnit = unitDiscount(line.price, {
        type: code.type as "amount" | "percent",
        valueCents: toCents(String(code.value)) ?? 0,
      });
      const total = BigInt(perUnit) * BigInt(units);
      totalDiscount += total;
      lineNet = gross - total;
      discount = {
        code: code.code,
        type: code.type,
        value: formatCents(toCents(String(code.value)) ?? 0),
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
