/**
 * What buyers use without logging in: the checkout lookup of a code by its text (the price
 * preview of an order is price_preview.ts), and when a code can be used at all.
 */
import { NotFoundError, UnprocessableError } from "@shared/errors.ts";
import { renderOne } from "@shared/handlers/mod.ts";
import { parseSingleQuery } from "@shared/query.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { access, type DiscountsContext } from "../context.ts";
import { codeDef, codeQuery } from "../resources.ts";
import { CODE_PATTERN } from "../rules.ts";
import { type CodeRow, findByText } from "../store/codes.ts";
import { lookupProjected, rememberEvent } from "../store/events.ts";

/**
 * Why a code cannot be used right now (inactive, or outside its window), or undefined when it
 * can. Uses left are not its concern: the lookup shows a used-up code with its `used-count`, as
 * the original did, the preview says so in a warning, and a reservation refuses it.
 */
export function unusable(code: CodeRow): string | undefined {
  const now = new Date();
  if (!code.is_active) return "it is not active";
  const from = code.valid_from;
  const till = code.valid_till;
  if (from && from > now) return `it is not valid before ${from.toISOString()}`;
  if (till && till <= now) return `it expired at ${till.toISOString()}`;
  return undefined;
}

/**
 * The checkout lookup. Anonymous callers are answered from the local projection of the
 * catalog's events when it knows the event as published (one query, no bus hop); otherwise, and
 * for every logged-in caller (who may see drafts they co-organize), the catalog is asked live.
 */
export async function lookupCode(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  const query = parseSingleQuery(req.query, codeQuery);
  // Trimmed, as the code's text was when it was created (a pasted code brings spaces along).
  const text = (req.params.code ?? "").trim();
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
  // Inactive or outside its window: 422 (contract §4); a used-up code is shown. No `source`: the
  // code is a path segment, and JSON:API's `source.parameter` names a query parameter (the
  // original's `{code}` named the route's; until 2026-12-05 ours said `code`, which
  // open-event-frontend also sends as a query parameter this route ignores).
  const why = unusable(code);
  if (why) throw new UnprocessableError(`Cannot use discount code ${code.code}: ${why}`);
  return renderOne(codeDef, code, { req, fields: query.fields, include: query.include });
}
