/**
 * What the discounts handlers share beyond the handler kit (@shared/handlers/mod.ts): guarding
 * a code, its relationships to catalog resources, and the fact a change announces.
 */
import type { NewFact } from "@shared/facts.ts";
import {
  foreignRelationsOf,
  isAdmin,
  notFound,
  requireActor,
  requireAdmin,
  requireLogin,
  trashedAsked,
} from "@shared/handlers/mod.ts";
import { linkPath } from "@shared/jsonapi.ts";
import type { OwnerQuery } from "@shared/query.ts";
import type { Actor, HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { catalog, catalogInternal } from "@shared/subjects.ts";
import {
  access,
  accessMany,
  type Caller,
  type DiscountsContext,
  factActor,
  isCoorganizer,
  requireCoorganizer,
} from "../context.ts";
import type { CodeRelation } from "../resources.ts";
import { codeFact as codeFactOf, type CodeVerb } from "../fact_payloads.ts";
import { type CodeRow, eventsOfMarketer, getCode } from "../store/codes.ts";

const jsonapi = { version: "1.0" };

/**
 * The code `{id}` once the caller may manage it: co-organizers of its own event (ticket kind)
 * or admins (both kinds). Soft-deleted codes are shown to admins asking `get_trashed=true`.
 * Every route of a code by id needs a login: it fails before saying whether the code exists.
 * Routes call it before they read their query or body, so a caller who may not see the code
 * gets the 403/404 that hides it, never a 400 about what they sent.
 */
export async function guardCode(
  ctx: DiscountsContext,
  req: HttpRequest,
  what = "use this discount code",
): Promise<{ code: CodeRow; caller: Caller }> {
  requireActor(req.actor);
  const id = req.params.id;
  // An admin purging (`permanent=true`) may reach a code that is already soft-deleted; who the
  // caller is comes after the code (its event), so the admin check is the last line.
  const code = await getCode(ctx.sql, id, trashedAsked(req.query)) ??
    notFound("discount code", id);
  if (code.used_for === "event") {
    const { caller } = await access(ctx, req.actor);
    hideFromNonAdmins(code.deleted_at !== null, caller, id);
    return { code, caller: requireAdmin(caller, what) };
  }
  const { caller, event } = await access(ctx, req.actor, code.event_id);
  // A code of an event the caller may not see (a draft) is not found, as the event is not.
  hideFromNonAdmins(event === null || code.deleted_at !== null, caller, id);
  return { code, caller: requireCoorganizer(caller, event, what) };
}

/**
 * A code only admins may see (trashed, or of a hidden event) is not found for anyone else, before
 * any role check: a 403 would tell a probe that the id exists (`get_trashed=true` did, a review).
 */
function hideFromNonAdmins(hidden: boolean, caller: Caller | null, id: string): void {
  if (hidden && !isAdmin(requireLogin(caller))) notFound("discount code", id);
}

/** The ids `rel` of `code` links to (none, one or many). */
export function idsOf(code: CodeRow, rel: CodeRelation): string[] {
  const value = code[rel.key];
  return [value ?? []].flat().map(String);
}

/** Catalog resources by id, as the actor may see them (unknown or hidden ones are left out). */
export async function resolveCatalog(
  ctx: DiscountsContext,
  req: HttpRequest,
  type: string,
  ids: string[],
): Promise<Record<string, unknown>[]> {
  return (await resolveWithIncluded(ctx, req, { type, ids })).data;
}

/**
 * `resolveCatalog` with what `include` asks of the catalog's own relationships and the sparse
 * `fields` of the reply (the catalog checks both as its own routes do: 400), applied there; the
 * data carry the linkage of what is included.
 */
async function resolveWithIncluded(
  ctx: DiscountsContext,
  req: HttpRequest,
  { type, ids, include = [], fields = {}, trashed = false }: {
    type: string;
    ids: string[];
    include?: string[];
    fields?: Record<string, string[]>;
    /** Soft-deleted resources too, for an admin (reads only: a write links live ones). */
    trashed?: boolean;
  },
): Promise<{ data: Record<string, unknown>[]; included?: Record<string, unknown>[] }> {
  // Asked even with no ids when the query has something to check: a bad one is a 400 anyway.
  if (!ids.length && !include.length && !Object.keys(fields).length) return { data: [] };
  const { data, included } = await ctx.bus.request(catalog.resolve, {
    actor: req.actor,
    type,
    ids,
    ...(include.length ? { include } : {}),
    ...(Object.keys(fields).length ? { fields } : {}),
    ...(trashed ? { trashed } : {}),
  });
  const byId = new Map(data.map((resource) => [resource.id, resource]));
  // Keep the code's own order.
  return { data: ids.map((id) => byId.get(id)).filter((r) => r !== undefined), included };
}

/**
 * `/v1/discount-codes/{id}/events` and `/tickets`: lists, paged, sorted and filtered as the
 * catalog's own lists of their type (api-surface §1). The catalog lists the code's ids with the
 * whole query in one statement and renders the page as those lists do (their 400s, `meta.count`,
 * paging links on this route's path). Until 2026-12-04 every linked resource came, whatever the
 * query asked.
 */
export async function renderRelatedList(
  ctx: DiscountsContext,
  req: HttpRequest,
  { code, rel }: { code: CodeRow; rel: CodeRelation },
): Promise<HttpReply> {
  const { document, foreignIncludes, foreignRelations } = await ctx.bus.request(
    catalogInternal.list,
    { actor: req.actor, type: rel.type, ids: idsOf(code, rel), path: req.path, query: req.query },
  );
  // What other services serve (a ticket's `discount-codes`): the gateway adds it, linked.
  return { status: 200, body: document, foreignIncludes, foreignRelations };
}

/**
 * `/v1/discount-codes/{id}/event` and `/marketer`: the related catalog resource, with the
 * `include` and `fields` of `owner` (the query's part the catalog reads, `ownerQueryOf`). An admin
 * asking `get_trashed=true` gets it from the trash too, as `include=event` on the code and the
 * code's `/events` and `/tickets` lists show it (until 2026-12-05: `data: null`).
 */
export async function renderRelated(
  ctx: DiscountsContext,
  req: HttpRequest,
  { code, rel, owner }: { code: CodeRow; rel: CodeRelation; owner: OwnerQuery },
): Promise<HttpReply> {
  const { include, fields } = owner;
  const { data: found, included } = await resolveWithIncluded(ctx, req, {
    type: rel.type,
    ids: idsOf(code, rel),
    include,
    fields,
    trashed: trashedAsked(req.query),
  });
  return {
    status: 200,
    body: {
      data: found[0] ?? null,
      links: { self: linkPath(req.path) },
      jsonapi,
      ...(included && { included }),
    },
    // What other services serve (an event's `discount-codes`): the gateway adds it, linked.
    foreignRelations: foreignRelationsOf(rel.type, found, include),
  };
}

/**
 * The fact a change of a code announces: its public payload (fact_payloads.ts), and on an update
 * the names it `changed`.
 */
export function codeFact(
  caller: Caller | null,
  verb: CodeVerb,
  row: CodeRow,
  changed?: readonly string[],
): NewFact {
  return codeFactOf(factActor(caller), verb, row, changed);
}

/**
 * Of the codes `userId` created, the events whose codes `caller` may still read: for a
 * non-admin, those they still co-organize (owner, organizer or coorganizer), the rule of a code
 * read by id and of `resolveCodes`; a former co-organizer keeps no window on an event's codes.
 * Undefined for admins: every code.
 */
export async function readableEventsOf(
  ctx: DiscountsContext,
  who: { actor: Actor | null; caller: Caller; userId: string },
): Promise<string[] | undefined> {
  if (isAdmin(who.caller)) return undefined;
  const eventIds = await eventsOfMarketer(ctx.sql, who.userId);
  if (!eventIds.length) return [];
  const { caller, events } = await accessMany(ctx, who.actor, eventIds);
  return eventIds.filter((id) => isCoorganizer(caller, events.get(id) ?? null));
}
