/**
 * Cross-service `include`: a service lists the ids of resources other services own, and the
 * gateway asks each owner's resolve endpoint for them and appends them to `included`. For
 * relationships another service owns (an event's `discount-codes`), the service lists the parent
 * ids, and the owner's resolve-related endpoint gives the linkage as well as the resources.
 */
import type { Bus } from "@shared/bus.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor, ForeignRelation } from "@shared/schemas/http.ts";
import { relationOwners, typeOwners } from "@shared/contracts/mod.ts";
import { fieldsetNames } from "@shared/fieldset_names.ts";
import { resolveEndpoint, resolveRelatedEndpoint } from "@shared/subjects.ts";

const decoder = new TextDecoder();
/** The resolve endpoint takes at most this many ids per request. */
const IDS_PER_REQUEST = 1000;
const resolvers = new Map<string, ReturnType<typeof resolveEndpoint>>();
const relatedResolvers = new Map<string, ReturnType<typeof resolveRelatedEndpoint>>();

interface ResourceIdentity {
  type: string;
  id: string;
  attributes?: Record<string, unknown>;
  relationships?: Record<string, unknown>;
}

function resolverOf(owner: string) {
  let endpoint = resolvers.get(owner);
  if (!endpoint) resolvers.set(owner, endpoint = resolveEndpoint(owner));
  return endpoint;
}

function relatedResolverOf(owner: string) {
  let endpoint = relatedResolvers.get(owner);
  if (!endpoint) relatedResolvers.set(owner, endpoint = resolveRelatedEndpoint(owner));
  return endpoint;
}

function key(resource: ResourceIdentity): string {
  return `${resource.type}\u0000${resource.id}`;
}

export interface MergeOptions {
  bus: Bus;
  actor: Actor | null;
  timeoutMs: number;
  logger: Logger;
  /** Sparse fieldsets (`fields[<type>]`) the request asked for, applied to what is added here. */
  fields?: Record<string, string[]>;
  /**
   * The document answers a relationship route: its data are identifiers, not resources, so what
   * they name is still to be included (`/v1/discount-codes/1/relationships/event?include=event`).
   */
  linkage?: boolean;
  /**
   * The request asked for the trash (`get_trashed=true`): each owner then shows an admin what its
   * own routes show them with it (the relationships of a soft-deleted parent, soft-deleted
   * resources), and anyone else what it shows without. Until 2026-12-05 it was not passed on,
   * and an admin's trashed event, shown by the catalog, included none of its codes.
   */
  trashed?: boolean;
}

/** The sparse fieldsets of a query: `fields[discount-code]=code,value` -> type -> names. */
export function sparseFieldsOf(query: Record<string, string>): Record<string, string[]> {
  const fields: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(query)) {
    const type = /^fields\[([^\]]+)\]$/.exec(key)?.[1];
    // Read as the services read them (`valid_from` is `valid-from`).
    if (type) fields[type] = fieldsetNames(value);
  }
  return fields;
}

function trimmed(resource: ResourceIdentity, names: string[] | undefined): ResourceIdentity {
  if (!names) return resource;
  const pick = (record: Record<string, unknown> | undefined) =>
    record && Object.fromEntries(Object.entries(record).filter(([name]) => names.includes(name)));
  const { attributes, relationships, ...rest } = resource;
  return { ...rest, attributes: pick(attributes), relationships: pick(relationships) };
}

/**
 * The response body completed with what other services own: resources by id (`includes`) and
 * relationships of the primary data (`relations`, whose linkage is written into the primary
 * resources too, so the compound document stays fully linked). Each type+id is included once
 * (the primary data counts as present, as JSON:API requires).
 *
 * @example
 * ```ts ignore
 * const body = await mergeForeign(reply.body, {
 *   includes: reply.foreignIncludes,
 *   relations: reply.foreignRelations,
 * }, { bus, actor: null, timeoutMs: 5000, logger });
 * ```
 */
export async function mergeForeign(
  body: Uint8Array,
  foreign: { includes?: Record<string, string[]>; relations?: ForeignRelation[] },
  options: MergeOptions,
): Promise<string> {
  const document = JSON.parse(decoder.decode(body)) as {
    data?: ResourceIdentity | ResourceIdentity[] | null;
    included?: ResourceIdentity[];
  };
  const included = document.included ?? [];
  const data = Array.isArray(document.data) ? document.data : document.data ? [document.data] : [];
  const primary = options.linkage ? [] : data;
  const seen = new Set([...primary, ...included].map(key));

  const requests: Promise<{ data: ResourceIdentity[] }>[] = [];
  for (const relation of foreign.relations ?? []) {
    const request = relatedRequest(relation, primary, options);
    if (request) requests.push(request);
  }
  for (const [type, ids] of Object.entries(foreign.includes ?? {})) {
    resolveRequests(type, ids, seen, options, requests);
  }
  for (const { data } of await Promise.all(requests)) {
    for (const resource of data) {
      const id = key(resource);
      if (seen.has(id)) continue;
      seen.add(id);
      included.push(trimmed(resource, options.fields?.[resource.type]));
    }
  }
  document.included = included;
  return JSON.stringify(document);
}

/**
 * Asks the owner of a relationship for it; its linkage is written into the `primary` resources
 * as it arrives, and the related resources are what the promise gives. Undefined (and logged)
 * when no service owns the relationship.
 */
function relatedRequest(
  relation: ForeignRelation,
  primary: ResourceIdentity[],
  options: MergeOptions,
): Promise<{ data: ResourceIdentity[] }> | undefined {
  const owner = relationOwners[`${relation.parentType}.${relation.relationship}`];
  if (owner === undefined) {
    options.logger.error("cannot include an unknown relationship", { ...relation });
    return undefined;
  }
  // The owner checks the fieldsets of its types as its own routes do (400); trimmed below.
  const fields = options.fields && Object.keys(options.fields).length
    ? { fields: options.fields }
    : {};
  const trashed = options.trashed ? { trashed: true } : {};
  const request = { actor: options.actor, ...relation, ...fields, ...trashed };
  return options.bus.request(relatedResolverOf(owner), request, {
    timeoutMs: options.timeoutMs,
  }).then(({ linkage, data }) => {
    // A fieldset of the parent's type that leaves the relationship out leaves its linkage out
    // too (JSON:API's exception to full linkage), as the owner of the parent does for its own.
    const names = options.fields?.[relation.parentType];
    if (names && !names.includes(relation.relationship)) return { data };
    for (const parent of primary) {
      if (parent.type !== relation.parentType || !(parent.id in linkage)) continue;
      parent.relationships ??= {};
      parent.relationships[relation.relationship] = {
        ...(parent.relationships[relation.relationship] as object | undefined),
        data: linkage[parent.id],
      };
    }
    return { data };
  });
}

/**
 * Adds to `requests` those asking the owner of `type` for the `ids` not already in the document,
 * in chunks the resolve endpoint takes. None (and logged) when no service owns the type.
 */
function resolveRequests(
  type: string,
  ids: string[],
  seen: Set<string>,
  options: MergeOptions,
  requests: Promise<{ data: ResourceIdentity[] }>[],
): void {
  const owner = typeOwners[type];
  if (owner === undefined) {
    options.logger.error("cannot include an unknown type", { type });
    return;
  }
  const wanted = [...new Set(ids)].filter((id) => !seen.has(key({ type, id })));
  // The owner checks the type's fieldset as its own routes do (400) and trims what it returns.
  const names = options.fields?.[type];
  const fields = names && { fields: { [type]: names } };
  const trashed = options.trashed && { trashed: true };
  for (let start = 0; start < wanted.length; start += IDS_PER_REQUEST) {
    const chunk = wanted.slice(start, start + IDS_PER_REQUEST);
    requests.push(
      options.bus.request(
        resolverOf(owner),
        { actor: options.actor, type, ids: chunk, ...fields, ...trashed },
        {
          timeoutMs: options.timeoutMs,
        },
      ),
    );
  }
}
