/**
 * JSON:API documents for every service: rows become resource objects, lists get paging links,
 * request bodies are checked and unwrapped, zod failures become pointed 422 errors.
 *
 * @example
 * ```ts
 * import { singleDocument, type ResourceDef } from "@shared/jsonapi.ts";
 * const topic: ResourceDef = {
 *   type: "event-topic",
 *   collection: "event-topics",
 *   attributes: { name: "name", slug: "slug", "deleted-at": "deleted_at" },
 *   relationships: { events: { type: "event", many: true } },
 * };
 * const doc = singleDocument(topic, { id: 1, name: "Science", slug: "science", deleted_at: null }, {
 *   self: "/v1/event-topics/1",
 * });
 * ```
 */
import type { z } from "zod";
import { BadRequestError, ConflictError, type ErrorObject, UnprocessableError } from "./errors.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";

export interface RelationshipDef {
  type: string;
  many?: boolean;
  /** Row key holding the related id (to-one) or an array of ids (to-many). */
  key?: string;
  /**
   * A relationship of the original's that this rebuild has no data for (an event's `tax`, ...):
   * shown only where a request includes it, with empty linkage and no links (there is nothing to
   * follow), so that clients that include it get an answer rather than a 400. A body that sends
   * it back is read as if it did not name it.
   */
  placeholder?: true;
}

export interface ResourceDef<Row = Record<string, unknown>> {
  /** JSON:API type, e.g. "event-topic". */
  type: string;
  /** URL collection, e.g. "event-topics" for /v1/event-topics/{id}. */
  collection: string;
  /** Dasherized name -> row key (snake_case column) or getter. */
  attributes: Record<string, string | ((row: Row) => unknown)>;
  /** Dasherized name -> definition. */
  relationships?: Record<string, RelationshipDef>;
}

export interface Identifier {
  type: string;
  id: string;
}

export interface ResourceObject {
  type: string;
  id: string;
  attributes: Record<string, unknown>;
  relationships?: Record<string, unknown>;
  links: { self: string };
}

export interface ListMeta {
  count: number;
}

const jsonapi = { version: "1.0" } as const;

// Lists show the same rows again and again, and Date#toISOString costs about 0.5 µs here: a
// page of 20 rows spent more on it than on building its resources.
const isoTexts = new Map<number, string>();

function isoText(date: Date): string {
  const time = date.getTime();
  let text = isoTexts.get(time);
  if (text === undefined) {
    // Throws on an invalid date before anything is kept, as toISOString always did.
    text = date.toISOString();
    if (isoTexts.size >= 10_000) isoTexts.clear();
    isoTexts.set(time, text);
  }
  return text;
}

function plain(value: unknown): unknown {
  return value instanceof Date ? isoText(value) : value;
}

function field(row: unknown, key: string): unknown {
  return (row as Record<string, unknown>)[key];
}

/**
 * Where a row carries linkage that is not one of its columns: the ids of the rows an `include`
 * loaded for a to-many relationship (an event's tickets). A symbol, so it never leaks as a field.
 */
const includedLinkage = Symbol("includedLinkage");

type LinkedRow = { [includedLinkage]?: Record<string, string[]> };

/**
 * Records on `row` which related ids an `include` loaded for its relationship `name`, so the
 * resource built from it carries that linkage as `data` (JSON:API full linkage).
 *
 * @example
 * ```ts
 * import { setIncludedLinkage, toResource } from "@shared/jsonapi.ts";
 * const def = {
 *   type: "event",
 *   collection: "events",
 *   attributes: {},
 *   relationships: { tickets: { type: "ticket", many: true } },
 * };
 * const row = { id: 3 };
 * setIncludedLinkage(row, "tickets", ["7", "8"]);
 * toResource(def, row).relationships; // { tickets: { links: {...}, data: [{ type: "ticket", id: "7" }, ...] } }
 * ```
 */
export function setIncludedLinkage(row: object, name: string, ids: string[]): void {
  const linked = row as LinkedRow;
  linked[includedLinkage] = { ...linked[includedLinkage], [name]: ids };
}

function linkage(
  name: string,
  def: RelationshipDef,
  row: unknown,
): Identifier | Identifier[] | null | undefined {
  const loaded = (row as LinkedRow)[includedLinkage]?.[name];
  if (loaded && def.many) return loaded.map((id) => ({ type: def.type, id }));
  if (loaded) return loaded.length ? { type: def.type, id: loaded[0] } : null;
  if (!def.key) return undefined;
  const value = field(row, def.key);
  if (def.many) {
    return Array.isArray(value)
      ? value.map((id) => ({ type: def.type, id: String(id) }))
      : undefined;
  }
  return value === null || value === undefined ? null : { type: def.type, id: String(value) };
}

interface DefEntries<Row> {
  attributes: [string, string | ((row: Row) => unknown)][];
  relationships: [string, RelationshipDef][];
  /** Apart: a row walks them only when something was included for it. */
  placeholders: [string, RelationshipDef][];
}

const defEntries = new WeakMap<object, DefEntries<unknown>>();

/** A definition's attributes and relationships as lists, made once: every row walks them. */
function entriesOf<Row>(def: ResourceDef<Row>): DefEntries<Row> {
  let entries = defEntries.get(def) as DefEntries<Row> | undefined;
  if (!entries) {
    const relationships = Object.entries(def.relationships ?? {});
    entries = {
      attributes: Object.entries(def.attributes),
      relationships: relationships.filter(([, rel]) => !rel.placeholder),
      placeholders: relationships.filter(([, rel]) => rel.placeholder),
    };
    defEntries.set(def, entries as DefEntries<unknown>);
  }
  return entries;
}

/**
 * One row as a resource object. `fields` (a sparse fieldset) keeps only the named attributes and
 * relationships.
 *
 * @example
 * ```ts
 * import { toResource } from "@shared/jsonapi.ts";
 * const def = {
 *   type: "ticket",
 *   collection: "tickets",
 *   attributes: { name: "name" },
 *   relationships: { event: { type: "event", key: "event_id" } },
 * };
 * toResource(def, { id: 7, name: "Early bird", event_id: 3 });
 * // { type: "ticket", id: "7", attributes: { name: "Early bird" }, relationships: { event: {
 * //   links: {...}, data: { type: "event", id: "3" } } }, links: { self: "/v1/tickets/7" } }
 * ```
 */
export function toResource<Row>(
  def: ResourceDef<Row>,
  row: Row,
  options: { fields?: string[] } = {},
): ResourceObject {
  const id = String(field(row, "id"));
  const self = `/v1/${def.collection}/${id}`;
  const wanted = options.fields ? new Set(options.fields) : undefined;
  const { attributes: attributeDefs, relationships: relationshipDefs, placeholders } = entriesOf(
    def,
  );
  const attributes: Record<string, unknown> = {};
  for (const [name, source] of attributeDefs) {
    if (wanted && !wanted.has(name)) continue;
    attributes[name] = plain(typeof source === "function" ? source(row) : field(row, source));
  }
  const resource: ResourceObject = { type: def.type, id, attributes, links: { self } };
  const relationships: Record<string, unknown> = {};
  for (const [name, rel] of relationshipDefs) {
    if (wanted && !wanted.has(name)) continue;
    const entry: Record<string, unknown> = {
      links: { self: `${self}/relationships/${name}`, related: `${self}/${name}` },
    };
    const data = linkage(name, rel, row);
    if (data !== undefined) entry.data = data;
    relationships[name] = entry;
  }
  const included = (row as LinkedRow)[includedLinkage];
  if (included) {
    for (const [name, rel] of placeholders) {
      if ((wanted && !wanted.has(name)) || !Object.hasOwn(included, name)) continue;
      relationships[name] = { data: linkage(name, rel, row) };
    }
  }
  if (def.relationships) resource.relationships = relationships;
  return resource;
}

/** Applies a by-type sparse fieldset to an already built resource (used for included ones). */
function sparse(resource: ResourceObject, fields?: Record<string, string[]>): ResourceObject {
  const wanted = fields?.[resource.type];
  if (!wanted) return resource;
  const keep = (object: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(object).filter(([name]) => wanted.includes(name)));
  const out: ResourceObject = { ...resource, attributes: keep(resource.attributes) };
  if (resource.relationships) out.relationships = keep(resource.relationships);
  return out;
}

function dedupe(
  included: ResourceObject[],
  fields: Record<string, string[]> | undefined,
  primary: ResourceObject[],
): ResourceObject[] {
  // JSON:API forbids the same resource twice in one document, primary data included.
  const seen = new Set(primary.map((r) => `${r.type}\u0000${r.id}`));
  const out: ResourceObject[] = [];
  for (const resource of included) {
    const key = `${resource.type}\u0000${resource.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(sparse(resource, fields));
  }
  return out;
}

/**
 * A document with one resource as primary data.
 *
 * @example
 * ```ts
 * import { singleDocument } from "@shared/jsonapi.ts";
 * const def = { type: "event-topic", collection: "event-topics", attributes: { name: "name" } };
 * singleDocument(def, { id: 1, name: "Science" }, { self: "/v1/event-topics/1" });
 * ```
 */
export function singleDocument<Row>(
  def: ResourceDef<Row>,
  row: Row,
  options: { self: string; included?: ResourceObject[]; fields?: Record<string, string[]> },
): object {
  const data = toResource(def, row, { fields: options.fields?.[def.type] });
  const doc: Record<string, unknown> = { data, links: { self: options.self }, jsonapi };
  if (options.included) doc.included = dedupe(options.included, options.fields, [data]);
  return doc;
}

/**
 * A request's path as a link. The gateway hands services the path as Hono reads it: decoded, save
 * `%` escapes of reserved characters (`%2F`, `%25`), which stay. So everything but `%` is encoded
 * again: a path with a space (a checkout lookup of a pasted code) gave a self link that is no URI.
 *
 * @example
 * ```ts
 * import { linkPath } from "@shared/jsonapi.ts";
 * linkPath("/v1/events/1/discount-codes/ OPEN"); // "/v1/events/1/discount-codes/%20OPEN"
 * ```
 */
export function linkPath(path: string): string {
  return path.replace(/[^%]+/g, encodeURI);
}

function link(path: string, query: Record<string, string>, pageNumber?: number): string {
  const params = new URLSearchParams(query);
  if (pageNumber !== undefined) params.set("page[number]", String(pageNumber));
  const search = params.toString();
  return search ? `${linkPath(path)}?${search}` : linkPath(path);
}

/**
 * A list document: `meta.count` is the total, links page through it keeping the client's other
 * query parameters. Page size 0 means "everything in one page".
 *
 * @example
 * ```ts
 * import { listDocument } from "@shared/jsonapi.ts";
 * const def = { type: "event-topic", collection: "event-topics", attributes: { name: "name" } };
 * listDocument(def, [{ id: 1, name: "Science" }], {
 *   path: "/v1/event-topics",
 *   query: { "page[size]": "1", sort: "name" },
 *   count: 3,
 *   page: { size: 1, number: 1 },
 * }); // links.next = "/v1/event-topics?page%5Bsize%5D=1&sort=name&page%5Bnumber%5D=2"
 * ```
 */
export function listDocument<Row>(
  def: ResourceDef<Row>,
  rows: Row[],
  options: {
    path: string;
    query: Record<string, string>;
    count: number;
    page: { size: number; number: number };
    included?: ResourceObject[];
    fields?: Record<string, string[]>;
  },
): object {
  const data = rows.map((row) => toResource(def, row, { fields: options.fields?.[def.type] }));
  const self = link(options.path, options.query);
  const links: Record<string, string> = { self };
  const { size, number } = options.page;
  if (size === 0) {
    links.first = self;
    links.last = self;
  } else {
    const last = Math.max(1, Math.ceil(options.count / size));
    links.first = link(options.path, options.query, 1);
    links.last = link(options.path, options.query, last);
    if (number > 1) links.prev = link(options.path, options.query, Math.min(number - 1, last));
    if (number < last) links.next = link(options.path, options.query, number + 1);
  }
  const meta: ListMeta = { count: options.count };
  const doc: Record<string, unknown> = { data, links, meta, jsonapi };
  if (options.included) doc.included = dedupe(options.included, options.fields, data);
  return doc;
}

/**
 * A relationship document (`/v1/<collection>/{id}/relationships/<name>`).
 *
 * @example
 * ```ts
 * import { relationshipDocument } from "@shared/jsonapi.ts";
 * relationshipDocument({
 *   self: "/v1/tickets/7/relationships/event",
 *   related: "/v1/tickets/7/event",
 *   data: { type: "event", id: "3" },
 * });
 * ```
 */
export function relationshipDocument(
  options: {
    self: string;
    related: string;
    data: Identifier | Identifier[] | null;
    /** What `include` asked for on the parent (see shared/handlers/reply.ts `renderLinkage`). */
    included?: ResourceObject[];
    fields?: Record<string, string[]>;
  },
): object {
  const links = { self: options.self, related: options.related };
  const doc: Record<string, unknown> = { data: options.data, links, jsonapi };
  // The primary data are identifiers, not resources: every included resource stays.
  if (options.included) doc.included = dedupe(options.included, options.fields, []);
  return doc;
}

/**
 * A document with only meta, e.g. the answer to DELETE.
 *
 * @example
 * ```ts
 * import { metaDocument } from "@shared/jsonapi.ts";
 * metaDocument({ message: "Object successfully deleted" }, { self: "/v1/tickets/7" });
 * ```
 */
export function metaDocument(
  meta: Record<string, unknown>,
  options: { self?: string } = {},
): object {
  const doc: Record<string, unknown> = { meta, jsonapi };
  if (options.self) doc.links = { self: options.self };
  return doc;
}

export interface ParsedResource {
  /** The URL id on PATCH; undefined on POST (client-generated ids are ignored). */
  id?: string;
  attributes: Record<string, unknown>;
  relationships: Record<string, Identifier | Identifier[] | null>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function identifier(value: unknown, type: string, pointer: string): Identifier {
  if (
    !isObject(value) || typeof value.type !== "string" ||
    (typeof value.id !== "string" && typeof value.id !== "number")
  ) {
    throw new BadRequestError(
      "Cannot read relationship: data must be an object with a string type and id",
      { pointer },
    );
  }
  if (value.type !== type) {
    throw new ConflictError(
      `Cannot save relationship: expected type "${type}", got "${value.type}"`,
      { pointer: `${pointer}/type` },
    );
  }
  return { type, id: String(value.id) };
}

function relationship(
  name: string,
  value: unknown,
  def: RelationshipDef,
): Identifier | Identifier[] | null {
  const base = `/data/relationships/${name}`;
  if (!isObject(value) || !("data" in value)) {
    throw new BadRequestError("Cannot read relationship: it must be an object with data", {
      pointer: base,
    });
  }
  const data = value.data;
  const pointer = `${base}/data`;
  if (def.many) {
    if (!Array.isArray(data)) {
      throw new BadRequestError(`Cannot read relationship: ${name} takes an array`, { pointer });
    }
    return data.map((item, i) => identifier(item, def.type, `${pointer}/${i}`));
  }
  if (data === null) return null;
  if (Array.isArray(data)) {
    throw new BadRequestError(`Cannot read relationship: ${name} takes one object or null`, {
      pointer,
    });
  }
  return identifier(data, def.type, pointer);
}

/** What is wrong with `data.type` or `data.id`: absent, or sent as another kind than a string. */
function memberProblem(member: "type" | "id", value: unknown): string {
  return `Cannot read body: data.${member} ${
    value === undefined ? "is missing" : "must be a string"
  }`;
}

/**
 * Checks a POST/PATCH body and unwraps it. `id` is the URL id on PATCH (the body must repeat it);
 * `relationships` are the ones the client may send. Of the others, those in `known` (every
 * relationship the resource has) give 422, and any other name is ignored, as the original
 * (marshmallow) ignored fields it did not know and as unknown attributes are: clients such as
 * ember-data send the relationships their own models have. Without `known`, every other gives 422.
 *
 * @example
 * ```ts
 * import { parseResourceDocument } from "@shared/jsonapi.ts";
 * const body = {
 *   data: { type: "ticket", attributes: { name: "VIP" }, relationships: {
 *     event: { data: { type: "event", id: "3" } },
 *   } },
 * };
 * parseResourceDocument(body, { type: "ticket", relationships: { event: { type: "event" } } });
 * // { attributes: { name: "VIP" }, relationships: { event: { type: "event", id: "3" } } }
 * ```
 */
export function parseResourceDocument(
  body: unknown,
  options: {
    type: string;
    id?: string;
    relationships?: Record<string, RelationshipDef>;
    known?: Record<string, unknown>;
  },
): ParsedResource {
  const data = isObject(body) ? body.data : undefined;
  if (!isObject(data)) {
    throw new BadRequestError("Cannot read body: it must be an object with a data object", {
      pointer: "/data",
    });
  }
  if (typeof data.type !== "string") {
    throw new BadRequestError(memberProblem("type", data.type), { pointer: "/data/type" });
  }
  if (data.type !== options.type) {
    throw new ConflictError(
      `Cannot save: expected type "${options.type}", got "${data.type}"`,
      { pointer: "/data/type" },
    );
  }
  const parsed: ParsedResource = { attributes: {}, relationships: {} };
  if (options.id !== undefined) {
    if (typeof data.id !== "string" && typeof data.id !== "number") {
      throw new BadRequestError(memberProblem("id", data.id), { pointer: "/data/id" });
    }
    if (String(data.id) !== options.id) {
      throw new ConflictError("Cannot save: data.id does not match the id in the URL", {
        pointer: "/data/id",
      });
    }
    parsed.id = options.id;
  }
  if (data.attributes !== undefined) {
    if (!isObject(data.attributes)) {
      throw new BadRequestError("Cannot read body: attributes must be an object", {
        pointer: "/data/attributes",
      });
    }
    parsed.attributes = data.attributes;
  }
  if (data.relationships !== undefined) {
    parsed.relationships = readRelationships(data.relationships, options);
  }
  return parsed;
}

/** Whether `name` is one of `known`'s relationships with data of ours (not a placeholder). */
function isOurs(known: Record<string, unknown>, name: string): boolean {
  return Object.hasOwn(known, name) && !(known[name] as RelationshipDef).placeholder;
}

/**
 * Whether a relationship sent in a body has `links` and no `data`: it sets nothing, and is
 * skipped. Reads show most relationships so (every to-many, and what was not included), so a
 * client that sends a resource back as it read it sends them; the original's marshmallow-jsonapi
 * skipped them too ("a relationships object does not need data if links is present").
 */
function onlyLinks(value: unknown): boolean {
  return isObject(value) && !("data" in value) && "links" in value;
}

/** A body's `relationships`, as `parseResourceDocument` reads them. */
function readRelationships(
  relationships: unknown,
  options: { relationships?: Record<string, RelationshipDef>; known?: Record<string, unknown> },
): ParsedResource["relationships"] {
  if (!isObject(relationships)) {
    throw new BadRequestError("Cannot read body: relationships must be an object", {
      pointer: "/data/relationships",
    });
  }
  const allowed = options.relationships ?? {};
  const read: ParsedResource["relationships"] = {};
  for (const [name, value] of Object.entries(relationships)) {
    if (onlyLinks(value)) continue;
    if (!Object.hasOwn(allowed, name)) {
      if (options.known && !isOurs(options.known, name)) continue;
      throw new UnprocessableError(`Cannot save: relationship ${name} cannot be set here`, {
        pointer: `/data/relationships/${name}`,
      });
    }
    read[name] = relationship(name, value, allowed[name]);
  }
  return read;
}

// Marks messages written by `readable` so they can be told from a schema's own messages.
const mark = "\u0000";

function a(noun: string): string {
  return /^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`;
}

function readable(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case "invalid_type": {
      if (issue.input === undefined) return "is required";
      if (issue.input === null) return "must not be null";
      const names: Record<string, string> = { int: "integer", date: "date-time" };
      return `must be ${a(names[issue.expected] ?? issue.expected)}`;
    }
    case "too_small":
    case "too_big": {
      const small = issue.code === "too_small";
      const bound = String(small ? issue.minimum : issue.maximum);
      const limit = issue.exact
        ? "exactly"
        : issue.inclusive === false
        ? (small ? "greater than" : "less than")
        : (small ? "at least" : "at most");
      if (issue.origin === "string") return `must be ${limit} ${bound} characters long`;
      if (issue.origin === "array" || issue.origin === "set") {
        return `must have ${limit} ${bound} items`;
      }
      if (issue.origin === "date") {
        const when = new Date(Number(bound)).toISOString();
        return `must be ${small ? "on or after" : "on or before"} ${when}`;
      }
      return `must be ${limit} ${bound}`;
    }
    case "invalid_format": {
      const formats: Record<string, string> = {
        email: "a valid email address",
        url: "a valid URL",
        datetime: "a date-time in ISO 8601 format with a time zone",
        date: "a date (YYYY-MM-DD)",
        uuid: "a valid UUID",
      };
      if (issue.format === "regex") return "has the wrong format";
      return `must be ${formats[issue.format] ?? `a valid ${issue.format}`}`;
    }
    case "not_multiple_of":
      return `must be a multiple of ${issue.divisor}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "unrecognized_keys":
      return `has unknown keys ${issue.keys.join(", ")}`;
    default:
      return "is invalid";
  }
}

function escapePointer(segment: PropertyKey): string {
  return String(segment).replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Where validated values sit in the request, and what the request was trying to do. */
export interface ValidateOptions {
  /** JSON pointer of the validated object (default `/data/attributes`; `""` for a plain body). */
  base?: string;
  /** Completes "Cannot ...:" in details (default "save"). */
  action?: string;
}

/**
 * A schema's own message about its value alone ("must not be empty", as shared field schemas
 * word it): the detail names the attribute, as for zod's own. Whole sentences are kept.
 */
const FRAGMENT = /^(must|is|has) /;

function errorObject(issue: z.core.$ZodIssue, options: ValidateOptions): ErrorObject {
  const base = options.base ?? "/data/attributes";
  const action = options.action ?? "save";
  const pointer = [base, ...issue.path.map(escapePointer)].join("/");
  const name = issue.path.length ? issue.path.map(String).join(".") : "the body";
  const message = issue.message.startsWith(mark) ? issue.message.slice(mark.length) : null;
  const detail = message !== null || FRAGMENT.test(issue.message)
    ? `Cannot ${action}: ${name} ${message ?? issue.message}`
    : issue.message.startsWith("Cannot ")
    ? issue.message
    : `Cannot ${action}: ${issue.message}`;
  return {
    status: "422",
    code: "unprocessable_entity",
    title: "Unprocessable entity",
    detail,
    source: { pointer },
  };
}

/**
 * Validates attributes with a zod schema; every problem becomes one JSON:API error pointing at
 * its attribute, all in one 422. Messages the schema sets itself are kept.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { validateAttributes } from "@shared/jsonapi.ts";
 * const schema = z.object({ code: z.string().min(1), value: z.number().min(0) });
 * try {
 *   validateAttributes(schema, { code: "X", value: -1 });
 * } catch (error) {
 *   // UnprocessableError "Cannot save: value must be at least 0",
 *   //   source.pointer "/data/attributes/value"
 *   console.log((error as Error).message);
 * }
 * ```
 */
export function validateAttributes<T>(
  schema: z.ZodType<T>,
  attributes: unknown,
  options: ValidateOptions = {},
): T {
  const result = schema.safeParse(attributes, { error: (issue) => mark + readable(issue) });
  if (result.success) return result.data;
  const [first, ...more] = result.error.issues.map((issue) => errorObject(issue, options));
  throw new UnprocessableError(first.detail ?? "Cannot save: invalid attributes", {
    pointer: first.source?.pointer,
    more,
  });
}

/** The answer to a successful DELETE, the same in every service. */
export const deletedReply: HttpReply = {
  status: 200,
  body: metaDocument({ message: "Object successfully deleted" }),
};

/** The answer to a successful DELETE of a resource other addresses may also reach (see `deleted`). */
export function deletedReplyOf(
  type: string,
  record: { id: string } & Record<string, unknown>,
): HttpReply {
  return { ...deletedReply, deleted: { type, record } };
}

/** A to-one link with nothing on the other end: `data: null`, as JSON:API says. */
export function renderEmpty(req: HttpRequest): HttpReply {
  return { status: 200, body: { data: null, links: { self: linkPath(req.path) }, jsonapi } };
}
