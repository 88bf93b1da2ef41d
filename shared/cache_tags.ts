/**
 * Cache tags: which cached replies a change makes stale (issue 11), computed in this one place
 * from the contracts, never in handlers. A reply's tags name what it shows; a change's tags name
 * what it touches; the gateway drops every entry sharing a tag with a change.
 *
 * - `<type>:<id>`: one resource (`event:5`). Also each `<collection>/<value>` pair of the path
 *   (`/v1/events/5/event-topic` shows `event:5`, whose row holds that linkage).
 * - `<collection>`: every list of that collection (`events`), which any change of one of its
 *   resources touches, and every 404 under it (creating the missing thing touches it).
 *   Lists are not tagged finer (`event-topic:3/events`): a fact carries no previous values, so
 *   the list an event leaves, and the later pages of any list it shifts, could not be found.
 *
 * Services declare extra tags a change of their types touches next to their contract
 * (`ServiceContract.touches`, e.g. an event is also addressed by its identifier).
 *
 * @example
 * ```ts
 * import { readTags, touchedBy } from "@shared/cache_tags.ts";
 * const request = { actor: null, params: { id: "5" }, path: "/v1/events/5", query: {}, requestId: "r" };
 * readTags(request, 200, { data: { type: "event", id: "5" } }); // ["event:5"]
 * touchedBy("ticket", { id: "9", event: "5" }); // ["ticket:9", "tickets"]
 * ```
 */
import { FACT_COLLECTIONS } from "./fact_names.ts";
import { includePaths } from "./fieldset_names.ts";
import { rawFilterOf } from "./query_filter.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";

/** A resource as tag functions see it: id, attributes and to-one linkage ids, flat. */
export type TagRecord = { id: string } & Record<string, unknown>;

/** Extra tags a change of one resource touches, beyond `<type>:<id>` and its collection. */
export type Touches = (record: TagRecord) => readonly string[];

/** The NATS reply header that carries a reply's tags (space-separated) to the gateway. */
export const CACHE_TAGS_HEADER = "Cache-Tags";
/** The NATS reply header with the time (ms since epoch) a cacheable reply stops being true. */
export const CACHE_EXPIRES_HEADER = "Cache-Expires";
/**
 * The tag of a change too wide to name (`writeTagsHeader`): every cached reply may be stale, and
 * whoever keeps replies or state by tag empties it all.
 */
export const EVERY_TAG = "*";
/**
 * The characters a write's tags may take in its reply (about 550 resources). Named one by one, a topic
 * whose deletion unlinked 40,000 events put 1.3 MiB in the reply's headers: more than NATS
 * carries, so the change was done and its client told to ask for less (a review, 2026-12-04).
 * Past this, the write says `EVERY_TAG` instead: such changes are rare admin work, and a cache
 * refilled once costs less than the tags would on every gateway.
 */
const MAX_WRITE_TAGS_CHARS = 16 * 1024;

const collectionOfType = new Map<string, string>();
const typeOfCollection = new Map<string, string>();
// Every type that can change has facts; types without (roles) never change.
for (const [type, collection] of Object.entries(FACT_COLLECTIONS)) {
  collectionOfType.set(type, collection);
  typeOfCollection.set(collection, type);
}
const extraTouches = new Map<string, Touches>();
/** Path values that can be ids or identifiers; anything else is left out of the tags. */
const PLAIN = /^[\w.~-]{1,128}$/;

/** Registers the extra tags a change of `type` touches (called by `defineContract`). */
export function declareTouches(type: string, touches: Touches): void {
  extraTouches.set(type, touches);
}

/** The collection tag of a type or a relationship name (`event` or `events` -> `events`). */
export function collectionTag(name: string): string | undefined {
  return typeOfCollection.has(name) ? name : collectionOfType.get(name);
}

/** Every tag a change of this resource touches: itself, its collection, declared extras. */
export function touchedBy(type: string, record: TagRecord): string[] {
  const tags = [`${type}:${record.id}`];
  const collection = collectionOfType.get(type);
  if (collection) tags.push(collection);
  const extra = extraTouches.get(type);
  if (extra) tags.push(...extra(record));
  return tags;
}

/**
 * The tags of one resource at each of its addresses (`event:5`, `event:my-conf`), without its
 * collection: what a change seen only by a projection of it makes stale (its pages, not lists).
 */
export function addressTags(type: string, record: TagRecord): string[] {
  const collection = collectionOfType.get(type);
  return touchedBy(type, record).filter((tag) => tag !== collection);
}

interface PathTags {
  /** `<type>:<value>` for each collection segment followed by a value. */
  pairs: string[];
  /** Every collection named in the path, in order. */
  collections: string[];
}

function decoded(segment: string): string | undefined {
  try {
    const value = decodeURIComponent(segment);
    return PLAIN.test(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The tags a request path names: `/v1/events/5/tickets` -> event:5; events, tickets. */
export function pathTags(path: string): PathTags {
  const segments = path.split("/").slice(2);
  const pairs: string[] = [];
  const collections: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const type = typeOfCollection.get(segments[i]);
    if (type === undefined) continue;
    collections.push(segments[i]);
    const next = segments[i + 1];
    if (next === undefined || next === "relationships" || typeOfCollection.has(next)) continue;
    const value = decoded(next);
    if (value !== undefined) pairs.push(`${type}:${value}`);
    i++;
  }
  return { pairs, collections };
}

interface Resource {
  type?: unknown;
  id?: unknown;
  attributes?: Record<string, unknown>;
  relationships?: Record<string, { data?: unknown }>;
}

function resourcesOf(value: unknown): Resource[] {
  if (Array.isArray(value)) return value as Resource[];
  return value && typeof value === "object" ? [value as Resource] : [];
}

/**
 * The tags of an anonymous reply of a public read, or undefined when it must not be cached
 * (only 200 and 404 are). Lists also carry their collection, the collections `include`
 * may add to, and those of the relationships their filter goes through; a 404 carries every
 * collection of its path.
 */
export function readTags(
  request: HttpRequest,
  status: number,
  body: unknown,
): string[] | undefined {
  if (status !== 200 && status !== 404) return undefined;
  const path = pathTags(request.path);
  const tags = new Set(path.pairs);
  if (status === 404) {
    for (const collection of path.collections) tags.add(collection);
    return [...tags];
  }
  const document = (body ?? {}) as { data?: unknown; included?: unknown };
  if (Array.isArray(document.data) && path.collections.length) {
    tags.add(path.collections[path.collections.length - 1]);
  }
  for (const resource of resourcesOf(document.data)) {
    if (typeof resource.type === "string") tags.add(`${resource.type}:${resource.id}`);
    addLinkageTags(tags, resource);
  }
  for (const resource of resourcesOf(document.included)) {
    if (typeof resource.type !== "string") continue;
    tags.add(`${resource.type}:${resource.id}`);
    addLinkageTags(tags, resource);
    // An included list (an event's tickets) changes when one of them is added.
    tags.add(collectionTag(resource.type) ?? resource.type);
  }
  for (const path of includePaths(request.query.include ?? "")) {
    for (const name of path.split(".")) {
      const collection = collectionTag(name);
      if (collection) tags.add(collection);
    }
  }
  for (const name of relationshipsFiltered(request.query)) {
    const collection = collectionTag(name.replaceAll("_", "-"));
    // Whatever it is, the list depends on it; a change no tag names would leave it stale.
    if (collection === undefined) return undefined;
    tags.add(collection);
  }
  return [...tags];
}

/**
 * The relationships a list's filter goes through (`{"name": "event-topic", "op": "has", ...}`):
 * which rows match changes with theirs (a topic renamed), so the list carries their collections,
 * an empty one too, which no resource's tag names. Read from what the service accepted, in
 * either form the service reads (`rawFilterOf`), so a bracketed filter gets the same tags.
 */
function relationshipsFiltered(query: Record<string, string>): string[] {
  let parsed: unknown;
  try {
    parsed = rawFilterOf(query);
  } catch {
    return [];
  }
  const names: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== "object") return;
    const { name, op, val, and, or, not } = node as Record<string, unknown>;
    if ((op === "has" || op === "any") && typeof name === "string") {
      names.push(name);
      walk(val);
    }
    for (const group of [and, or, not]) walk(group);
  };
  walk(parsed);
  return names;
}

/**
 * What a resource links to one-to-one (`event-topic:3` for a sub-topic of topic 3): a permanent
 * delete there changes this reply without a fact about it (the database cascades the delete or
 * clears the link), so the related resource's fact must drop it.
 */
function addLinkageTags(tags: Set<string>, resource: Resource): void {
  for (const relationship of Object.values(resource.relationships ?? {})) {
    const linkage = relationship?.data as { type?: unknown; id?: unknown } | null | undefined;
    if (linkage && !Array.isArray(linkage) && typeof linkage.type === "string") {
      tags.add(`${linkage.type}:${linkage.id}`);
    }
  }
}

function recordOf(resource: Resource): TagRecord {
  const record: TagRecord = { ...resource.attributes, id: String(resource.id) };
  for (const [name, relationship] of Object.entries(resource.relationships ?? {})) {
    const linkage = relationship?.data as { id?: unknown } | null | undefined;
    if (linkage && !Array.isArray(linkage) && linkage.id !== undefined) {
      record[name] = String(linkage.id);
    }
  }
  return record;
}

/**
 * What a successful write touches, for the gateway that relayed it to drop at once (so its
 * client reads its own write before the fact arrives): each resource of the reply's primary
 * data as its fact would, and everything its path names.
 */
export function writeTags(
  request: HttpRequest,
  status: number,
  body: unknown,
): string[] | undefined {
  if (status >= 300) return undefined;
  const path = pathTags(request.path);
  const tags = new Set([...path.pairs, ...path.collections]);
  const data = (body as { data?: unknown } | undefined)?.data;
  for (const resource of resourcesOf(data)) {
    if (typeof resource.type !== "string" || resource.id === undefined) continue;
    for (const tag of touchedBy(resource.type, recordOf(resource))) tags.add(tag);
  }
  return [...tags];
}

/** How an HTTP endpoint's replies are tagged for the gateway's cache (set by its contract). */
export interface EndpointCache {
  /** `read`: a public read, tagged for anonymous callers; `write`: a change, tagged to drop. */
  role: "read" | "write";
  /** When a cacheable reply stops being true on its own (ms since epoch), e.g. a code expires. */
  expires?: (body: unknown) => number | undefined;
}

/**
 * The NATS reply headers that carry a reply's cache tags (and expiry) to the gateway: for
 * anonymous replies of public reads, and for successful writes. Undefined for everything else.
 */
export function cacheHeaders(
  policy: EndpointCache,
  request: HttpRequest,
  reply: Pick<HttpReply, "status" | "body" | "deleted" | "cascaded" | "unsparse">,
): Record<string, string> | undefined {
  // What the reply is about, whatever fieldset trimmed what the client sees.
  const whole = reply.unsparse === undefined ? reply.body : { data: reply.unsparse };
  if (policy.role === "write") {
    const tags = writeTags(request, reply.status, whole);
    for (const changed of tags ? [reply.deleted ?? [], reply.cascaded ?? []].flat() : []) {
      tags!.push(...touchedBy(changed.type, changed.record));
    }
    return tags?.length ? { [CACHE_TAGS_HEADER]: writeTagsHeader(tags) } : undefined;
  }
  if (request.actor !== null) return undefined;
  const tags = readTags(request, reply.status, reply.body);
  if (!tags) return undefined;
  const headers: Record<string, string> = { [CACHE_TAGS_HEADER]: tags.join(" ") };
  const expires = reply.status === 200 ? policy.expires?.(whole) : undefined;
  if (expires !== undefined) headers[CACHE_EXPIRES_HEADER] = String(expires);
  return headers;
}

/** A write's tags as its reply carries them: each once, or `EVERY_TAG` past the bound. */
function writeTagsHeader(tags: readonly string[]): string {
  const value = [...new Set(tags)].join(" ");
  return value.length > MAX_WRITE_TAGS_CHARS ? EVERY_TAG : value;
}
