/** The pieces every catalog handler shares: caller loading, rendering, trash and delete rules. */
import type { Handler } from "@shared/bus.ts";
import { type Queryable, translateDbError } from "@shared/db.ts";
import { ForbiddenError, NotFoundError } from "@shared/errors.ts";
import {
  listDocument,
  relationshipDocument,
  type ResourceDef,
  type ResourceObject,
  singleDocument,
  toResource,
} from "@shared/jsonapi.ts";
import type { ListQuery } from "@shared/query.ts";
import type { ForeignRelation, HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { relationOwners } from "@shared/subjects.ts";
import { changeWithFact, type NewFact, unchanged } from "@shared/facts.ts";
import { type Caller, type CatalogContext, factActor, isAdmin, loadCaller } from "../context.ts";
import { catalogFact } from "../fact_payloads.ts";
import type { Row } from "../store/common.ts";
import type { Viewer } from "../store/events.ts";

export interface Call {
  req: HttpRequest;
  caller: Caller | null;
}

/** Wraps a handler so it receives the caller, loaded fresh from the database. */
export function handle(
  ctx: CatalogContext,
  fn: (call: Call) => Promise<HttpReply>,
): Handler<HttpRequest, HttpReply> {
  return async (req) => {
    try {
      return await fn({ req, caller: await loadCaller(ctx.sql, req.actor) });
    } catch (error) {
      // Writes translate their database errors in the store; this catches bad values in reads.
      throw translateDbError(error);
    }
  };
}

export function viewer(caller: Caller | null): Viewer {
  return { id: caller?.id ?? null, admin: isAdmin(caller) };
}

/**
 * `?get_trashed=true` shows soft-deleted rows, to admins only; so does `?permanent=true`, so an
 * admin can purge a row that is already soft-deleted.
 */
export function withTrashed(caller: Caller | null, query: Record<string, string>): boolean {
  return (query.get_trashed === "true" || query.permanent === "true") && isAdmin(caller);
}

/** `?permanent=true` deletes for good; only admins may ask. */
export function permanentDelete(caller: Caller | null, query: Record<string, string>): boolean {
  if (query.permanent !== "true") return false;
  if (!isAdmin(caller)) throw new ForbiddenError("Cannot delete permanently: admins only");
  return true;
}

export function notFound(what: string, id: string | undefined): never {
  throw new NotFoundError(`Cannot find ${what} ${JSON.stringify(id ?? "")}`);
}

/** Relationships of `rows` that `include` asks for but another service owns. */
function foreignRelationsOf(
  type: string,
  rows: Row[],
  include: string[] | undefined,
): ForeignRelation[] | undefined {
  const relations = (include ?? [])
    .filter((path) => relationOwners[`${type}.${path}`] !== undefined)
    .map((relationship) => ({
      parentType: type,
      relationship,
      parentIds: rows.map((row) => String(row.id)),
    }));
  return relations.length && rows.length ? relations : undefined;
}

export function renderOne(
  def: ResourceDef<Row>,
  row: Row,
  req: HttpRequest,
  options: {
    included?: ResourceObject[];
    fields?: Record<string, string[]>;
    include?: string[];
    status?: number;
  } = {},
): HttpReply {
  const self = options.status === 201 ? `/v1/${def.collection}/${row.id}` : req.path;
  return {
    status: options.status ?? 200,
    body: singleDocument(def, row, { self, included: options.included, fields: options.fields }),
    location: options.status === 201 ? self : undefined,
    foreignRelations: foreignRelationsOf(def.type, [row], options.include),
  };
}

export function renderList(
  def: ResourceDef<Row>,
  result: { rows: Row[]; count: number },
  req: HttpRequest,
  query: ListQuery,
  included?: ResourceObject[],
): HttpReply {
  return {
    status: 200,
    body: listDocument(def, result.rows, {
      path: req.path,
      query: req.query,
      count: result.count,
      page: query.page,
      included,
      fields: query.fields,
    }),
    foreignRelations: foreignRelationsOf(def.type, result.rows, query.include),
  };
}

/** `/relationships/<rel>`: linkage of what `/<rel>` would show. */
export function renderLinkage(
  req: HttpRequest,
  def: ResourceDef<Row>,
  related: Row | Row[] | null,
  relatedDef: ResourceDef<Row>,
): HttpReply {
  const base = `/v1/${def.collection}/${req.params.id}`;
  const link = (row: Row) => ({ type: relatedDef.type, id: toResource(relatedDef, row).id });
  return {
    status: 200,
    body: relationshipDocument({
      self: `${base}/relationships/${req.params.rel}`,
      related: `${base}/${req.params.rel}`,
      data: Array.isArray(related) ? related.map(link) : related ? link(related) : null,
    }),
  };
}

/**
 * Runs `change` in a transaction with its fact: `about.type` and `about.verb` name the fact, whose
 * data is the change's result, the row after the change (`about.row` when it returns none).
 * `about.actor` overrides the caller (a sign-up is made by the new user).
 */
export function commit<T>(
  ctx: CatalogContext,
  call: Call,
  about: {
    type: string;
    verb: string;
    row?: Row;
    actor?: (result: T) => Caller;
    /** The row before an update: an update that changed nothing announces nothing. */
    before?: Row;
  },
  change: (tx: Queryable) => Promise<T>,
): Promise<T> {
  return changeWithFact(ctx.sql, ctx.relay, change, (result) => {
    if (about.before && unchanged(about.before, result)) return null;
    const data = (result as Row | undefined) ?? about.row ?? {};
    const actor = about.actor ? { ...call, caller: about.actor(result) } : call;
    return fact(actor, about.type, about.verb, data);
  });
}

/** The fact a change announces: the resource's public payload (fact_payloads.ts). */
export function fact(call: Call, type: string, verb: string, row: Row): NewFact {
  return catalogFact(factActor(call.caller), type, verb, row);
}
