/**
 * The rules of a discount code (api-surface §4): attribute schemas for POST and PATCH, and the
 * checks that need the whole code (applied to the merged state on PATCH). Every failure is a 422
 * pointing at the attribute or relationship to fix; all of them are reported at once.
 */
import { z } from "zod";
import { type ErrorObject, UnprocessableError } from "@shared/errors.ts";
import { dateTime, URL_SCHEMES } from "@shared/schemas/catalog.ts";
import { lenientBoolean, lenientNumber } from "@shared/schemas/lenient.ts";
import type { ticketInfoSchema } from "@shared/schemas/bus.ts";
import { formatCents, toCents } from "./money.ts";

export type TicketInfo = z.infer<typeof ticketInfoSchema>;

/** Codes travel in URLs and are typed at checkout: plain letters, digits, `-` and `_`. */
export const CODE_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_INT = 2_147_483_647;

const codeText = z.string().trim().min(1).max(64).regex(
  CODE_PATTERN,
  "Cannot save discount code: code may contain only letters A-Z, digits, - and _",
);

/** `value` as clients send it: a number or a numeric string ("100"), kept as exact cents. */
const valueCents = z.unknown().transform((input, ctx) => {
  const cents = typeof input === "number" || typeof input === "string" ? toCents(input) : undefined;
  if (cents === undefined) {
    ctx.addIssue({
      code: "custom",
      message: input === null || input === undefined
        ? "Cannot save discount code: value is required"
        : "Cannot save discount code: value must be a non-negative amount with at most 2 " +
          "decimals, below 10000000000",
    });
    return z.NEVER;
  }
  return cents;
});

// The bounds first, and each stops the checks: int() alone would also report its own limit
// (2^53 - 1) for a huge number, a second error citing a limit that is not ours.
const count = lenientNumber(
  z.number().min(0, { abort: true }).max(MAX_INT, { abort: true }).int(),
);
const url = z.url({
  protocol: URL_SCHEMES,
  message: "Cannot save discount code: discount-url must be an absolute http(s) or ftp(s) URL",
}).max(2000);

export const codeCreateAttributes = z.object({
  "code": codeText,
  "discount-url": url.nullish(),
  "value": valueCents,
  "type": z.enum(["amount", "percent"]),
  // Not nullable, as the original's schema (no allow_none: a 422): a null that reset a PATCH to
  // the default would switch a deactivated code back on.
  "is-active": lenientBoolean().optional(),
  "tickets-number": count.nullish(),
  "min-quantity": count.nullish(),
  "max-quantity": count.nullish(),
  "valid-from": dateTime.nullish(),
  "valid-till": dateTime.nullish(),
  "used-for": z.enum(["event", "ticket"]),
});
export type CodeCreateAttributes = z.infer<typeof codeCreateAttributes>;

export const codeUpdateAttributes = codeCreateAttributes.extend({
  "code": codeText.optional(),
  "value": valueCents.optional(),
  "type": z.enum(["amount", "percent"]).optional(),
  "used-for": z.enum(["event", "ticket"]).optional(),
});
export type CodeUpdateAttributes = z.infer<typeof codeUpdateAttributes>;

/** The max-quantity of a code that names none, when its tickets-number does not lower it. */
const DEFAULT_MAX_QUANTITY = 100;

/**
 * The max-quantity of a code that names none (not sent on POST, null on PATCH): 100, never more
 * than its total uses, so a code with `tickets-number` alone is valid.
 */
export function defaultMaxQuantity(ticketsNumber: number | null): number {
  return ticketsNumber === null
    ? DEFAULT_MAX_QUANTITY
    : Math.min(DEFAULT_MAX_QUANTITY, ticketsNumber);
}

/** The min-quantity of a code that names none: 1, never more than its max-quantity. */
export function defaultMinQuantity(maxQuantity: number): number {
  return Math.min(1, maxQuantity);
}

/** A code as the rules see it: stored values merged with the request's. */
export interface CodeState {
  type: "amount" | "percent";
  valueCents: number;
  ticketsNumber: number | null;
  minQuantity: number;
  maxQuantity: number;
  /** The max-quantity is the default: a POST sent none, or a PATCH null (`defaultMaxQuantity`). */
  maxQuantityDefaulted?: boolean;
  validFrom: Date | null;
  validTill: Date | null;
  usedCount: number;
  usedFor: "event" | "ticket";
  /** The code's own event (ticket kind). */
  eventId: string | null;
}

function problem(detail: string, pointer: string): ErrorObject {
  return {
    status: "422",
    code: "unprocessable_entity",
    title: "Unprocessable entity",
    detail: `Cannot save discount code: ${detail}`,
    source: { pointer },
  };
}

const at = (name: string) => `/data/attributes/${name}`;
const TICKETS = "/data/relationships/tickets";

/** The tickets a code is checked against (see `checkCode`). */
export interface AttachedTickets {
  /** The ticket ids the code will hold (unknown ones are missing from `tickets`). */
  requested: string[];
  /** What the catalog knows of them. */
  tickets: TicketInfo[];
  /**
   * Ids attached before this write. One made free since is never refused: it takes no discount
   * (the checkout leaves free tickets at 0), so no terms can be wrong for it, and a write that
   * keeps it must not fail for it. One repriced below the amount since is priced again only
   * when `termsChanged` (new terms must fit today's prices); any other edit goes through.
   */
  kept?: readonly string[];
  /** The write changes the discount's value or type: kept paid tickets are priced again. */
  termsChanged?: boolean;
}

/** What is wrong with attaching `ticket` (`id`, missing when unknown) to a code in `state`. */
function ticketProblem(
  state: CodeState,
  { id, ticket, kept }: { id: string; ticket?: TicketInfo; kept: boolean },
  termsChanged: boolean,
): ErrorObject | undefined {
  // A ticket of another event reads as one that does not exist: the catalog answers for every
  // ticket id, so saying more would tell anyone with an event of their own which ids exist, in
  // drafts they may not see too (the price preview hides them the same way).
  if (!ticket || (state.eventId !== null && ticket.eventId !== state.eventId)) {
    const where = state.eventId === null ? "" : ` in event ${state.eventId}`;
    return problem(`ticket ${id} does not exist${where}`, TICKETS);
  }
  if (ticket.type === "free") {
    return kept
      ? undefined
      : problem(`ticket ${id} is free: a free ticket takes no discount`, TICKETS);
  }
  if (kept && !termsChanged) return undefined;
  if (state.type === "amount" && state.valueCents > (toCents(ticket.price) ?? 0)) {
    return problem(
      `the amount (${formatCents(state.valueCents)}) exceeds the price of ticket ${id} ` +
        `(${ticket.price})`,
      at("value"),
    );
  }
}

/**
 * The max-quantity as a problem cites it: a default the client never sent is named as one
 * (until 2026-12-05 a POST of `min-quantity` 150 alone was told of a max-quantity of 100 as if
 * it had sent it; found by a review).
 */
function maxQuantityNamed(state: CodeState): string {
  if (!state.maxQuantityDefaulted) return String(state.maxQuantity);
  const lower = state.maxQuantity < DEFAULT_MAX_QUANTITY
    ? `, tickets-number when under ${DEFAULT_MAX_QUANTITY}`
    : "";
  return `${state.maxQuantity}: the default when none is sent${lower}`;
}

/** Checks the whole code against its rules and the tickets it holds. */
export function checkCode(
  state: CodeState,
  attached: AttachedTickets = { requested: [], tickets: [] },
): void {
  const problems: ErrorObject[] = [];
  if (state.type === "percent" && state.valueCents > 100_00) {
    problems.push(problem("a percent value must be between 0 and 100", at("value")));
  }
  if (state.minQuantity > state.maxQuantity) {
    problems.push(problem(
      `min-quantity (${state.minQuantity}) must not exceed max-quantity (${
        maxQuantityNamed(state)
      })`,
      at("min-quantity"),
    ));
  }
  if (state.ticketsNumber !== null && state.ticketsNumber < state.maxQuantity) {
    problems.push(problem(
      `tickets-number (${state.ticketsNumber}) must be at least max-quantity ` +
        `(${state.maxQuantity})`,
      at("tickets-number"),
    ));
  }
  if (state.ticketsNumber !== null && state.ticketsNumber < state.usedCount) {
    problems.push(problem(
      `tickets-number (${state.ticketsNumber}) must be at least the uses already taken ` +
        `(${state.usedCount})`,
      at("tickets-number"),
    ));
  }
  if (state.validFrom && state.validTill && state.validFrom >= state.validTill) {
    problems.push(problem("valid-till must be after valid-from", at("valid-till")));
  }
  const known = new Map(attached.tickets.map((ticket) => [ticket.id, ticket]));
  const kept = new Set(attached.kept);
  for (const id of attached.requested) {
    const link = { id, ticket: known.get(id), kept: kept.has(id) };
    const found = ticketProblem(state, link, attached.termsChanged ?? false);
    if (found) problems.push(found);
  }
  if (problems.length) {
    const [first, ...more] = problems;
    throw new UnprocessableError(first.detail!, { pointer: first.source?.pointer, more });
  }
}
