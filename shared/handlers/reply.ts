/**
 * The replies every service's HTTP handlers give: one resource, a page of them, a relationship's
 * linkage. Each reply also tells the gateway what `include` asked for that another service owns,
 * derived from the contracts (`typeOwners`, `relationOwners`), so no service lists it by hand.
 *
 * @example
 * ```ts
 * import { renderOne } from "@shared/handlers/reply.ts";
 * const def = { type: "ticket", collection: "tickets", attributes: { name: "name" } };
 * const req = { actor: null, params: {}, path: "/v1/tickets", query: {}, requestId: "r1" };
 * renderOne(def, { id: "7", name: "Early bird" }, { req, status: 201 }).location; // "/v1/tickets/7"
 * ```
 */
import { relationOwners, typeOwners } from "../contracts/mod.ts";
import {
  type Identifier,
  linkPath,
  listDocument,
  relationshipDocument,
  type ResourceDef,
  type ResourceObject,
  singleDocument,
  toResource,
} from "../jsonapi.ts";
import type { ListQuery } from "../query.ts";
import type { ForeignRelation, HttpReply, HttpRequest } from "../schemas/http.ts";

/** What `include` and `fields` a reply honours (a parsed list or single query). */
export type IncludeQuery = Pick<ListQuery, "include" | "fields">;

export interface RenderOneOptions {
  req: HttpRequest;
  /** 201 makes the self link and `location` the new resource's URL. */
  status?: number;
  /** Resources this service loaded for `include`. */
  included?: ResourceObject[];
  fields?: Record<string, string[]>;
  /** `include` paths: those another service owns go to the gateway (foreign includes). */
  include?: string[];
}

export interface RenderListOptions {
  /** Where the list is: its links page through `path` with the client's query. */
  req: Pick<HttpRequest, "path" | "query">;
  query: Pick<ListQuery, "page" | "include" | "fields">;
  included?: ResourceObject[];
}

function idOf(row: unknown): string {
  return String((row as { id?: unknown }).id);
}

function valueOf(row: unknown, key: string): unknown {
  return (row as Record<string, unknown>)[key];
}

/** Relationships of `rows` that `include` asks for and another service serves (the gateway asks it). */
export function foreignRelationsOf(
  type: string,
  rows: unknown[],
  include: readonly string[] | undefined,
): ForeignRelation[] | undefined {
  if (!rows.length) return undefined;
  const relations = (include ?? [])
    .filter((path) => relationOwners[`${type}.${path}`] !== undefined)
    .map((relationship) => ({ parentType: type, relationship, parentIds: rows.map(idOf) }));
  return relations.length ? relations : undefined;
}

/**
 * Ids, by type, of resources `include` asks for that another service owns, read from the rows'
 * relationship keys (`event_id` of a discount code): the gateway resolves them from their owner.
 */
export function foreignIncludesOf<R>(
  def: ResourceDef<R>,
  rows: R[],
  include: readonly string[] | undefined,
): Record<string, string[]> | undefined {
  const out: Record<string, Set<string>> = {};
  for (const path of include ?? []) {
    const rel = def.relationships?.[path];
    if (!rel?.key || typeOwners[rel.type] === typeOwners[def.type]) continue;
    const ids = out[rel.type] ??= new Set();
    for (const row of rows) {
      for (const id of [valueOf(row, rel.key) ?? []].flat()) ids.add(String(id));
    }
  }
  const found = Object.entries(out).filter(([, ids]) => ids.size);
  return found.length
    ? Object.fromEntries(found.map(([type, ids]) => [type, [...ids]]))
    : undefined;
}

/** A document with `row` as primary data; 201 adds `location`. */
export function renderOne<R>(def: ResourceDef<R>, row: R, options: RenderOneOptions): HttpReply {
  const created = options.status === 201;
  const self = created ? `/v1/${def.collection}/${idOf(row)}` : linkPath(options.req.path);
  return {
    status: options.status ?? 200,
    body: singleDocument(def, row, { self, included: options.included, fields: options.fields }),
    unsparse: options.fields?.[def.type] ? toResource(def, row) : undefined,
    location: created ? self : undefined,
    foreignIncludes: foreignIncludesOf(def, [row], options.include),
    foreignRelations: foreignRelationsOf(def.type, [row], options.include),
  };
}

/** A page of rows with its total (`meta.count`) and paging links. */
export function renderList<R>(
  def: ResourceDef<R>,
  page: { rows: R[]; count: number },
  options: RenderListOptions,
): HttpReply {
  const { req, query } = options;
  return {
    status: 200,
    body: listDocument(def, page.rows, {
      path: req.path,
      query: req.query,
      count: page.count,
      page: query.page,
      included: options.included,
      fields: query.fields,
    }),
    foreignIncludes: foreignIncludesOf(def, page.rows, query.include),
    foreignRelations: foreignRelationsOf(def.type, page.rows, query.include),
  };
}

/** Resource identifiers of `related` (rows of `relatedDef`'s type). */
export function linkageOf(
  relatedDef: Pick<ResourceDef, "type">,
  related: unknown,
): Identifier | Identifier[] | null {
  const link = (row: unknown) => ({ type: relatedDef.type, id: idOf(row) });
  if (Array.isArray(related)) return related.map(link);
  return related === null || related === undefined ? null : link(related);
}

/**
 * What `include` and `fields` add to a relationship route's linkage. The original read a
 * relationship route's `include` with the parent's paths, as JSON:API's own example does
 * (`/v1/events/1/relationships/tickets?include=tickets`): the resources come in `included`.
 */
export interface LinkageIncludes<P = unknown> {
  query: IncludeQuery;
  /** What this service loaded for `query.include`. */
  included?: ResourceObject[];
  /** The parent, where this service owns it: what other services own is read off it. */
  owned?: { def: ResourceDef<P>; row: P };
}

/**
 * `/v1/<parent collection>/{id}/relationships/<rel>`: the linkage of what `/<rel>` would show.
 * `related` is a row, rows, or null, of `relatedDef`'s type; `includes` adds what `include`
 * asked for on the parent.
 */
export function renderLinkage<P>(
  relatedDef: Pick<ResourceDef, "type">,
  related: unknown,
  options: {
    req: HttpRequest;
    parent: Pick<ResourceDef, "collection">;
    includes?: LinkageIncludes<P>;
  },
): HttpReply {
  const { req, parent, includes } = options;
  const base = `/v1/${parent.collection}/${req.params.id}`;
  const include = includes?.query.include;
  const owned = includes?.owned;
  return {
    status: 200,
    body: relationshipDocument({
      self: `${base}/relationships/${req.params.rel}`,
      related: `${base}/${req.params.rel}`,
      data: linkageOf(relatedDef, related),
      // Asked for and nothing of ours: the gateway adds what others own.
      included: includes?.included ?? (include?.length ? [] : undefined),
      fields: includes?.query.fields,
    }),
    foreignIncludes: owned && foreignIncludesOf(owned.def, [owned.row], include),
    foreignRelations: owned && foreignRelationsOf(owned.def.type, [owned.row], include),
  };
}
