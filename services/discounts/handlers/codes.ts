/**
 * `/v1/discount-codes`: ticket codes are managed by the co-organizers of their own event, event
 * codes by admins only (whatever relationships the body carries). Every rule of rules.ts is
 * applied to the merged state on PATCH (code_update.ts); prices and ticket ownership come from
 * the catalog.
 */
import { changeWithFact } from "@shared/facts.ts";
import {
  checkForeignFieldsets,
  deletedReply,
  type IncludeQuery,
  notFound,
  permanentDelete,
  renderLinkage,
  renderList,
  renderOne,
  requireActor,
  requireAdmin,
  withTrashed,
} from "@shared/handlers/mod.ts";
import { parseResourceDocument } from "@shared/jsonapi.ts";
import {
  ownerQueryOf,
  parseListQuery,
  parseSingleQuery,
  relationshipQuerySpec,
} from "@shared/query.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { access, type DiscountsContext } from "../context.ts";
import { codeDef, codeQuery, type CodeRelation, codeRelations } from "../resources.ts";
import {
  type CodeRow,
  deleteCode,
  getCode,
  insertCode,
  listCodes,
  lockCodeForDelete,
} from "../store/codes.ts";
import { unusable } from "./checkout.ts";
import { checkStillNamed, codeRelationships } from "./code_input.ts";
import { createAccess, newCode } from "./code_create.ts";
import { saveCodeUpdate } from "./code_update.ts";
import { codeFact, guardCode, idsOf, renderRelated, renderRelatedList } from "./common.ts";

/** `GET /v1/discount-codes`: every code, for admins. */
export async function listDiscountCodes(
  ctx: DiscountsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  requireActor(req.actor);
  const { caller } = await access(ctx, req.actor);
  const admin = requireAdmin(caller, "list all discount codes");
  const query = parseListQuery(req.query, codeQuery);
  const result = await listCodes(ctx.sql, query, { withTrashed: withTrashed(admin, req.query) });
  return renderList(codeDef, result, { req, query });
}

export async function showDiscountCode(
  ctx: DiscountsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  // Who may see the code comes first: a bad query from a caller who may not is the 403/404
  // that hides the code, as for every route of a code by id.
  const { code } = await guardCode(ctx, req, "see this discount code");
  const query = parseSingleQuery(req.query, codeQuery);
  return renderOne(codeDef, code, { req, fields: query.fields, include: query.include });
}

export async function createDiscountCode(
  ctx: DiscountsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  requireActor(req.actor);
  const query = parseSingleQuery(req.query, codeQuery);
  await checkForeignFieldsets(ctx.bus, codeDef, query, req.actor);
  const doc = parseResourceDocument(req.body, {
    type: "discount-code",
    relationships: codeRelationships,
    known: codeDef.relationships,
  });
  const owner = await createAccess(ctx, req, doc);
  const { values, links } = await newCode(ctx, req, { doc, owner });
  const event = values.event_id === null ? undefined : String(values.event_id);
  const row = await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx) => {
      await checkStillNamed(ctx, req, tx, {
        locks: { events: [...(event ? [event] : []), ...links.eventIds], tickets: links.ticketIds },
        event,
        events: links.eventIds,
        tickets: links.ticketIds,
      });
      return await insertCode(tx, values, links);
    },
    (row) => codeFact(owner.caller, "created", row),
  );
  return renderOne(codeDef, row, {
    req,
    status: 201,
    fields: query.fields,
    include: query.include,
  });
}

export async function updateDiscountCode(
  ctx: DiscountsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  const target = await guardCode(ctx, req, "change this discount code");
  if (target.code.deleted_at) notFound("discount code", req.params.id);
  const query = parseSingleQuery(req.query, codeQuery);
  await checkForeignFieldsets(ctx.bus, codeDef, query, req.actor);
  const doc = parseResourceDocument(req.body, {
    type: "discount-code",
    id: String(target.code.id),
    relationships: codeRelationships,
    known: codeDef.relationships,
  });
  const row = await saveCodeUpdate(ctx, req, { ...target, doc });
  return renderOne(codeDef, row, { req, fields: query.fields, include: query.include });
}

/** Soft delete, or for good with `?permanent=true` (admins only). */
export async function deleteDiscountCode(
  ctx: DiscountsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  const { code, caller } = await guardCode(ctx, req, "delete this discount code");
  const permanent = permanentDelete(caller, req.query);
  if (code.deleted_at && !permanent) notFound("discount code", req.params.id);
  await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx) => {
      // Read again under the lock: a PATCH committed since the read above is in the fact.
      const current = await lockCodeForDelete(tx, code.id);
      // Deleted meanwhile by a concurrent request, which announced it: 404, no second fact.
      if (!current || (current.deleted_at && !permanent)) {
        notFound("discount code", req.params.id);
      }
      await deleteCode(tx, code.id, permanent);
      // A purge announces the row as it was (as the catalog's purges do), a soft delete the row
      // as stored (its deleted-at, the events it no longer applies to).
      return permanent ? current : (await getCode(tx, code.id, true))!;
    },
    (deleted) => ({ ...codeFact(caller, "deleted", deleted), purged: permanent }),
  );
  return deletedReply;
}

/**
 * The relationships a buyer's client follows from the checkout lookup's answer: open-event-frontend
 * reads the code's `event` through its related link (its store keys events by identifier, so the
 * linkage's id is never there) and then its `tickets`; the original served both to anyone, and
 * until 2026-12-05 a buyer's promo code was "not valid" here (a client review: 401 and 403).
 */
const FOLLOWED_FROM_THE_LOOKUP = new Set(["event", "tickets"]);

/**
 * The code `{id}` if the checkout lookup would show it to this caller: a live ticket code, usable
 * now, of an event the caller may see. Its event and tickets are then no secret: the lookup's
 * answer names them.
 */
async function shownByTheLookup(
  ctx: DiscountsContext,
  req: HttpRequest,
): Promise<CodeRow | undefined> {
  const code = await getCode(ctx.sql, req.params.id, false);
  if (!code || code.used_for !== "ticket" || unusable(code)) return undefined;
  const { event } = await access(ctx, req.actor, code.event_id);
  return event ? code : undefined;
}

/**
 * The relationship `params.rel` of a code the caller may see: one they manage, or for the
 * relationships a buyer follows, one the checkout lookup shows them.
 */
async function guardRelation(ctx: DiscountsContext, req: HttpRequest) {
  const rel: CodeRelation = codeRelations[req.params.rel] ??
    notFound("relationship", req.params.rel);
  const shown = FOLLOWED_FROM_THE_LOOKUP.has(req.params.rel)
    ? await shownByTheLookup(ctx, req)
    : undefined;
  const code = shown ?? (await guardCode(ctx, req, "see this discount code")).code;
  return { code, rel };
}

/** `GET /v1/discount-codes/{id}/<rel>`: the related catalog resources. */
export async function relatedOfCode(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  const guarded = await guardRelation(ctx, req);
  if (guarded.rel.many) return await renderRelatedList(ctx, req, guarded);
  // `include` and `fields` follow the related type's own routes: the catalog checks them.
  const owner = ownerQueryOf(req.query);
  parseSingleQuery(owner.rest, { extra: ["get_trashed"] });
  return await renderRelated(ctx, req, { ...guarded, owner });
}

/** `GET /v1/discount-codes/{id}/relationships/<rel>`: linkage to them (`include`: the code's). */
export async function linkageOfCode(ctx: DiscountsContext, req: HttpRequest): Promise<HttpReply> {
  const { code, rel } = await guardRelation(ctx, req);
  const query = parseSingleQuery(req.query, relationshipQuerySpec(codeQuery, req.params.rel));
  return renderCodeLinks(req, code, rel, query);
}

/**
 * The linkage of a code's relationship `rel`: to-many as a list, to-one as one or null; with
 * what `query.include` asks for on the code (all of it the catalog's: the gateway adds it).
 */
export function renderCodeLinks(
  req: HttpRequest,
  code: CodeRow,
  rel: CodeRelation,
  query: IncludeQuery,
): HttpReply {
  const related = idsOf(code, rel).map((id) => ({ id }));
  const data = rel.many ? related : related[0] ?? null;
  return renderLinkage(rel, data, {
    req,
    parent: codeDef,
    includes: { query, owned: { def: codeDef, row: code } },
  });
}
