/** What the discounts handlers share: guarding a code, rendering, foreign includes, facts. */
import { NotFoundError, UnauthorizedError } from "@shared/errors.ts";
import type { NewFact } from "@shared/facts.ts";
import { listDocument, relationshipDocument, singleDocument } from "@shared/jsonapi.ts";
import type { ListQuery } from "@shared/query.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { catalog } from "@shared/subjects.ts";
import {
  access,
  type Caller,
  type DiscountsContext,
  factActor,
  isAdmin,
  requireAdmin,
  requireCoorganizer,
} from "../context.ts";
import { codeDef, type CodeRelation, codeRelations } from "../resources.ts";
import { codeFact as codeFactOf, type CodeVerb } from "../fact_payloads.ts";
import { type CodeRow, getCode } from "../store/codes.ts";

const jsonapi = { version: "1.0" };

export function notFound(what: string, id: string | undefined): never {
  throw new NotFoundError(`Cannot find ${what} ${JSON.stringify(id ?? "")}`);
}

/** Every route of a code by id needs a login: fail before saying whether the code exists. */
export function requireActor(req: HttpRequest): void {
  if (!req.actor) throw new UnauthorizedError("Cannot continue: log in first");
}

/**
 * The code `{id}` once the caller may manage it: co-organizers of its own event (ticket kind)
 * or admins (both kinds). Soft-deleted codes are shown to admins asking `get_trashed=true`.
 */
export async function guardCode(
  ctx: DiscountsContext,
  req: HttpRequest,
  what = "use this discount code",
): Promise<{ code: CodeRow; caller: Caller }> {
  requireActor(req);
  const id = req.params.id;
  // An admin purging (`permanent=true`) may reach a code that is already soft-deleted.
  const trashed = req.query.get_trashed === "true" || req.query.permanent === "true";
  const code = await getCode(ctx.sql, id, trashed) ??
    notFound("discount code", id);
  if (code.used_for === "event") {
    const { caller } = await access(ctx, req.actor);
    const admin = requireAdmin(caller, what);
    return { code, caller: admin };
  }
  const { caller, event } = await access(ctx, req.actor, code.event_id);
  const allowed = requireCoorganizer(caller, event, what);
  if (code.deleted_at && !isAdmin(allowed)) notFound("discount code", id);
  return { code, caller: allowed };
}

/** `?permanent=true` deletes for good (admins only: checked by the caller). */
export function wantsPermanent(req: HttpRequest): boolean {
  return req.query.permanent === "true";
}

/** The ids `rel` of `code` links to (none, one or many). */
export function idsOf(code: CodeRow, rel: CodeRelation): string[] {
  const value = code[rel.key];
  return [value ?? []].flat().map(String);
}

/** Ids of catalog resources `include` asks for, by type, for the gateway to fetch. */
export function foreignIncludes(
  rows: CodeRow[],
  include: string[],
): Record<string, string[]> | undefined {
  if (!include.length || !rows.length) return undefined;
  const out: Record<string, Set<string>> = {};
  for (const path of include) {
    const rel = codeRelations[path];
    if (!rel) continue;
    const set = out[rel.type] ??= new Set();
    for (const row of rows) for (const id of idsOf(row, rel)) set.add(id);
  }
  const result = Object.fromEntries(
    Object.entries(out).filter(([, ids]) => ids.size).map(([type, ids]) => [type, [...ids]]),
  );
  return Object.keys(result).length ? result : undefined;
}

export function renderCode(
  row: CodeRow,
  req: HttpRequest,
  options: { status?: number; query?: Pick<ListQuery, "include" | "fields"> } = {},
): HttpReply {
  const created = options.status === 201;
  const self = created ? `/v1/discount-codes/${row.id}` : req.path;
  return {
    status: options.status ?? 200,
    body: singleDocument(codeDef, row, { self, fields: options.query?.fields }),
    location: created ? self : undefined,
    foreignIncludes: options.query ? foreignIncludes([row], options.query.include) : undefined,
  };
}

export function renderCodes(
  result: { rows: CodeRow[]; count: number },
  req: HttpRequest,
  query: ListQuery,
): HttpReply {
  return {
    status: 200,
    body: listDocument(codeDef, result.rows, {
      path: req.path,
      query: req.query,
      count: result.count,
      page: query.page,
      fields: query.fields,
    }),
    foreignIncludes: foreignIncludes(result.rows, query.include),
  };
}

/** `/relationships/<rel>` of any parent: linkage to codes. */
export function renderCodeLinkage(
  req: HttpRequest,
  collection: string,
  rows: CodeRow[] | CodeRow | null,
): HttpReply {
  const base = `/v1/${collection}/${req.params.id}`;
  const link = (row: CodeRow) => ({ type: codeDef.type, id: String(row.id) });
  return {
    status: 200,
    body: relationshipDocument({
      self: `${base}/relationships/${req.params.rel}`,
      related: `${base}/${req.params.rel}`,
      data: Array.isArray(rows) ? rows.map(link) : rows ? link(rows) : null,
    }),
  };
}

/** Catalog resources by id, as the actor may see them (unknown or hidden ones are left out). */
export async function resolveCatalog(
  ctx: DiscountsContext,
  req: HttpRequest,
  type: string,
  ids: string[],
): Promise<Record<string, unknown>[]> {
  if (!ids.length) return [];
  const { data } = await ctx.bus.request(catalog.resolve, { actor: req.actor, type, ids });
  const byId = new Map(data.map((resource) => [resource.id, resource]));
  // Keep the code's own order.
  return ids.map((id) => byId.get(id)).filter((r) => r !== undefined);
}

/** `/v1/discount-codes/{id}/relationships/<rel>`: linkage to the catalog resources. */
export function renderRelationship(req: HttpRequest, code: CodeRow, rel: CodeRelation): HttpReply {
  const base = `/v1/discount-codes/${req.params.id}`;
  const ids = idsOf(code, rel).map((id) => ({ type: rel.type, id }));
  return {
    status: 200,
    body: relationshipDocument({
      self: `${base}/relationships/${req.params.rel}`,
      related: `${base}/${req.params.rel}`,
      data: rel.many ? ids : ids[0] ?? null,
    }),
  };
}

/** `/v1/discount-codes/{id}/<rel>`: the related catalog resources. */
export async function renderRelated(
  ctx: DiscountsContext,
  req: HttpRequest,
  code: CodeRow,
  rel: CodeRelation,
): Promise<HttpReply> {
  const found = await resolveCatalog(ctx, req, rel.type, idsOf(code, rel));
  if (!rel.many) {
    return { status: 200, body: { data: found[0] ?? null, links: { self: req.path }, jsonapi } };
  }
  return {
    status: 200,
    body: { data: found, links: { self: req.path }, meta: { count: found.length }, jsonapi },
  };
}

/** The fact a change of a code announces: its public payload (fact_payloads.ts). */
export function codeFact(caller: Caller | null, verb: CodeVerb, row: CodeRow): NewFact {
  return codeFactOf(factActor(caller), verb, row);
}
