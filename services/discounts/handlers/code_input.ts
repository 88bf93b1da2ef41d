/**
 * Reading a discount code document and checking what it links to: the relationships clients
 * may send, their size, which belong to which kind of code, and the catalog's tickets and events
 * they name. Shared by POST, PATCH and the relationship writes.
 */
import { ConflictError, UnprocessableError } from "@shared/errors.ts";
import { isId } from "@shared/handlers/mod.ts";
import type { Identifier, ParsedResource, RelationshipDef } from "@shared/jsonapi.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { catalogInternal } from "@shared/subjects.ts";
import { access, type DiscountsContext, requireCoorganizer } from "../context.ts";
import type { TicketInfo } from "../rules.ts";
import { type CodeKind, eventCodeOf } from "../store/codes.ts";
import { resolveCatalog } from "./common.ts";
import { askAccess, isEventKey } from "@shared/access.ts";
import type { Queryable } from "@shared/db.ts";
import { shareCatalogNames } from "../store/catalog_names.ts";

/** The relationships a code document may carry. */
export const codeRelationships: Record<string, RelationshipDef> = {
  event: { type: "event" },
  events: { type: "event", many: true },
  tickets: { type: "ticket", many: true },
  // Server-set (the creator): accepted so clients may echo it, never read.
  marketer: { type: "user" },
};

/** The most tickets or events one code links to. */
export const MAX_LINKS = 1000;

export function unprocessable(detail: string, pointer: string): never {
  throw new UnprocessableError(`Cannot save discount code: ${detail}`, { pointer });
}

/** The ids of to-many relationship `name`, deduplicated; undefined when the document omits it. */
export function many(doc: ParsedResource, name: string): string[] | undefined {
  const value = doc.relationships[name] as Identifier[] | undefined;
  if (value === undefined) return undefined;
  if (value.length > MAX_LINKS) {
    unprocessable(`${name} takes at most ${MAX_LINKS} items`, `/data/relationships/${name}`);
  }
  return [...new Set(value.map((item) => item.id))];
}

export function one(doc: ParsedResource, name: string): Identifier | null | undefined {
  return doc.relationships[name] as Identifier | null | undefined;
}

/** Relationships that do not belong to the kind: a ticket code has no `events`, and so on. */
export function checkKindRelationships(doc: ParsedResource, usedFor: CodeKind): void {
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

/**
 * The event ids `keys` name, deduplicated, in order: each key an event's id or its identifier
 * (usable wherever an event id is, api-surface §3). Every event a code's write names comes
 * through here, the body's `event` and `events` and `/relationships/events` alike, so all take
 * the same forms as POST's `event` (read by `access`, which takes both). A key that names no
 * event the caller sees stays as sent: the checks that follow report it as not existing.
 */
export async function eventIdsOf(
  ctx: DiscountsContext,
  req: HttpRequest,
  keys: string[],
): Promise<string[]> {
  const ids = await Promise.all(keys.map(async (key) => {
    if (isId(key) || !isEventKey(key)) return key;
    return (await access(ctx, req.actor, key)).event?.id ?? key;
  }));
  return [...new Set(ids)];
}

/** Attached tickets as the catalog knows them (unknown or deleted ones are missing). */
export async function ticketsOf(ctx: DiscountsContext, ids: string[]): Promise<TicketInfo[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  const { tickets } = await ctx.bus.request(catalogInternal.tickets, { ids: valid });
  return tickets;
}

/**
 * The events an event code is applied to: each must exist and hold no other event code (`codeId`,
 * the code being changed, may hold them). Their codes are read through `db`: a write's own
 * transaction when it checks inside one. Read through the pool there, each check took a second
 * connection while holding one, and as many writes at once as the pool has connections waited
 * for each other until their requests timed out (a review, 2026-12-05).
 */
export async function checkEvents(
  ctx: DiscountsContext,
  req: HttpRequest,
  { db, eventIds, codeId }: { db: Queryable; eventIds: string[]; codeId?: string },
): Promise<void> {
  const pointer = "/data/relationships/events";
  const found = new Set(
    (await resolveCatalog(ctx, req, "event", eventIds.filter(isId))).map((e) => String(e.id)),
  );
  for (const id of eventIds) {
    if (!found.has(id)) unprocessable(`event ${id} does not exist`, pointer);
    const current = await eventCodeOf(db, id);
    if (current && String(current.id) !== codeId) {
      throw new ConflictError(
        `Cannot save discount code: event ${id} already has event discount code ${current.id}`,
        { pointer },
      );
    }
  }
}

/**
 * What a code's write names, asked of the catalog again, live, under the locks a deletion's
 * handling waits for (store/catalog_names.ts): deleted since the first check is a 422 now, never
 * a code that outlives the deletion. `locks` are shared whether asked again or not (attached
 * tickets, the event of a code being updated: their deletion then waits for this write).
 */
export async function checkStillNamed(
  ctx: DiscountsContext,
  req: HttpRequest,
  tx: Queryable,
  names: {
    locks: { events: string[]; tickets: string[] };
    /** The event a new ticket code is for: asked again with the caller's role on it. */
    event?: string;
    events?: string[];
    tickets?: string[];
    codeId?: string;
  },
): Promise<void> {
  await shareCatalogNames(tx, names.locks);
  if (names.event !== undefined) {
    const { caller, event } = await askAccess(ctx.bus, req.actor, names.event);
    if (!event) unprocessable("the event does not exist", "/data/relationships/event");
    // The caller's role too, from this live answer: the kept one that let the write begin may
    // predate a revocation committed since (a race review saw a code created 57 ms after one).
    requireCoorganizer(caller, event, "create a discount code for this event");
  }
  if (names.events?.length) {
    await checkEvents(ctx, req, { db: tx, eventIds: names.events, codeId: names.codeId });
  }
  if (names.tickets?.length) {
    const live = new Set((await ticketsOf(ctx, names.tickets)).map((ticket) => ticket.id));
    const gone = names.tickets.find((id) => !live.has(id));
    if (gone !== undefined) {
      unprocessable(`ticket ${gone} does not exist`, "/data/relationships/tickets");
    }
  }
}
