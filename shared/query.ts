/**
 * Parses and whitelists JSON:API list parameters: `filter` (the original's JSON form), `sort`,
 * `page[...]`, `include`, `fields[...]`. Client names map to columns through the route's spec, so
 * nothing the client sends reaches SQL except as a bound value.
 *
 * @example
 * ```ts
 * import { parseListQuery } from "@shared/query.ts";
 * const query = parseListQuery(
 *   { filter: '[{"name":"code","op":"eq","val":"X"}]', sort: "-created-at" },
 *   { fields: {
 *     code: { column: "code", type: "string" },
 *     "created-at": { column: "created_at", type: "datetime" },
 *   } },
 * );
 * // query.filter = { and: [{ column: "code", op: "eq", value: "X", type: "string" }] }
 * // query.sort = [{ column: "created_at", desc: true }]
 * ```
 */
import { BadRequestError } from "./errors.ts";
import { fieldsetNames, includePaths } from "./fieldset_names.ts";
import { booleanFromText } from "./schemas/lenient.ts";
import { inStoredYears, readDateTime } from "./date_time.ts";
import {
  filterError,
  isBracketedFilter,
  MAX_CONDITIONS as maxConditions,
  MAX_DEPTH as maxDepth,
  rawFilterOf,
} from "./query_filter.ts";

/** `integer` is a Postgres `integer` (32 bits), `bigint` a `bigint` (ids of bigserial tables). */
export type FieldType = "string" | "integer" | "bigint" | "number" | "boolean" | "datetime";

/**
 * A filterable and sortable attribute. `caseless` (text only) compares and sorts a column without
 * regard to case, as Postgres's citext does: the original's discount codes and users' emails were
 * citext, so its filters (`eq`, `like`, `in_`, `gt`, ...) and sorts on them ignored case.
 *
 * @example
 * ```ts
 * import { parseListQuery, type QueryField } from "@shared/query.ts";
 * const code: QueryField = { column: "code", type: "string", caseless: true };
 * parseListQuery({ sort: "code" }, { fields: { code } }).sort;
 * // [{ column: "code", desc: false, caseless: true }]: ordered by lower("code")
 * ```
 */
export type QueryField =
  | { column: string; type: "string"; caseless?: true }
  | { column: string; type: Exclude<FieldType, "string">; caseless?: never };

export interface QuerySpec {
  /** Filterable and sortable attributes: dasherized name -> column. */
  fields: Record<string, QueryField>;
  /** Relationships a filter may go through (`has`, `any`): dasherized name -> how. */
  relationships?: Record<string, RelatedFilter | AbsentRelated>;
  /** Allowed include paths, e.g. ["event", "event.event-topic"]. */
  includes?: string[];
  /**
   * Allowed `fields[<type>]` types -> allowed field names. `["*"]` accepts any well-formed name:
   * for types another service owns, whose included resources the gateway trims.
   */
  sparse?: Record<string, string[]>;
  /** Other parameters this route accepts, e.g. ["get_trashed"]. */
  extra?: string[];
  defaultSort?: SortKey[];
}

/**
 * A relationship a list may be filtered through, as flask-rest-jsonapi offered it: `has` on a
 * to-one, `any` on a to-many, its `val` a filter on the related rows' own attributes. Declared
 * only for a table of the same service's schema (a service never reads another's tables) whose
 * rows anyone who sees the listed row may see, but for soft deletion (`softDeleted`).
 *
 * @example
 * ```ts
 * import type { RelatedFilter } from "@shared/query.ts";
 * const tickets: RelatedFilter = {
 *   many: true,
 *   table: "tickets",
 *   on: { parent: "events.id", related: "tickets.event_id" },
 *   fields: { type: { column: "type", type: "string" } },
 *   softDeleted: true,
 * };
 * ```
 */
export interface RelatedFilter {
  /** A to-many relationship (filtered with `any`) or a to-one (with `has`). */
  many: boolean;
  /** The related table; never the listed table itself (its columns go unqualified). */
  table: string;
  /** The link, each column qualified by its table: `events.id` = `tickets.event_id`. */
  on: { parent: string; related: string };
  /** What `val` may name: the related resource's filterable attributes (its own list's). */
  fields: QuerySpec["fields"];
  /** Whether its rows are soft-deleted: trashed ones match only where trashed rows are listed. */
  softDeleted: boolean;
}

/**
 * A relationship of the original's whose resources this rebuild does not keep (an event's
 * `event-type`), which its clients still filter on: the filter is read and checked as any
 * relationship's, against the attributes the original's resource had, and matches no row, as
 * nothing is related. A 400 instead would fail a whole list for asking what is simply not there.
 *
 * @example
 * ```ts
 * import type { AbsentRelated } from "@shared/query.ts";
 * const eventType: AbsentRelated = {
 *   many: false,
 *   table: null,
 *   fields: { name: { column: "name", type: "string" } },
 * };
 * ```
 */
export interface AbsentRelated {
  many: boolean;
  /** No table: no row is related. */
  table: null;
  /** What `val` may name: the attributes of the original's resource. */
  fields: QuerySpec["fields"];
}

export interface SortKey {
  column: string;
  desc: boolean;
  /** Sorted without regard to case (`QueryField.caseless`). */
  caseless?: true;
}

export type FilterOp =
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "like"
  | "ilike"
  | "in_"
  | "notin_"
  | "is_"
  | "isnot";

export type FilterNode =
  | { and: FilterNode[] }
  | { or: FilterNode[] }
  | { not: FilterNode }
  | { related: RelatedFilter | AbsentRelated; filter: FilterNode }
  | { column: string; op: FilterOp; value: unknown; type: FieldType; caseless?: true };

export interface ListQuery {
  filter?: FilterNode;
  sort: SortKey[];
  page: { size: number; number: number };
  include: string[];
  fields: Record<string, string[]>;
  extra: Record<string, string>;
}

const ops = new Set<string>([
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "like",
  "ilike",
  "in_",
  "notin_",
  "is_",
  "isnot",
]);
const defaultPageSize = 20;
/** Largest page[size]; 0 (no paging) is allowed too. */
const maxPageSize = 1000;
const INT4_MIN = -2_147_483_648;
const INT4_MAX = 2_147_483_647;

/** A month-first date, US style. */
const MONTH_FIRST = /^(\d{1,2})([-/])(\d{1,2})\2(\d{4})$/;

/**
 * A month-first date (`12-30-2019`, `12/30/2019`) written year first, other text as it is. The
 * original's Postgres read such a date month first (its default DateStyle, `ISO, MDY`), and
 * open-event-frontend's explore page sends its custom dates so (its date pickers' `MM-DD-YYYY`).
 */
function yearFirst(text: string): string {
  const match = MONTH_FIRST.exec(text);
  return match === null ? text : `${match[4]}-${match[1]}-${match[3]}`;
}

/**
 * The instant a filter's date or date-time names, read by the rule request bodies follow (one
 * without an offset is UTC, as the original's Postgres session read it, not this host's zone; a
 * date alone is its midnight, also written month first: `yearFirst`). `t` and `z` may be
 * lowercase: the original's filters went to Postgres, which took either. Undefined when it names
 * no time or one Postgres cannot hold.
 */
function instantOf(text: string): Date | undefined {
  const instant = readDateTime(yearFirst(text).toUpperCase(), "utc");
  return instant !== undefined && inStoredYears(instant) ? instant : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function named<T>(table: Record<string, T> | undefined, name: string): T | undefined {
  // The original's clients send both "starts-at" and "starts_at".
  const dashed = name.replaceAll("_", "-");
  return !table
    ? undefined
    : Object.hasOwn(table, name)
    ? table[name]
    : Object.hasOwn(table, dashed)
    ? table[dashed]
    : undefined;
}

function lookup(spec: QuerySpec, name: string) {
  return named(spec.fields, name);
}

function coerce(name: string, type: FieldType, value: unknown): unknown {
  const fail = () => filterError(`${name} takes ${type} values, got ${JSON.stringify(value)}`);
  switch (type) {
    case "string":
      // Postgres text cannot hold NUL: refuse it here rather than fail in the database.
      if (typeof value === "string" && !value.includes("\u0000")) return value;
      if (typeof value === "number" && Number.isFinite(value)) return String(value);
      throw fail();
    case "integer":
    case "bigint": {
      const n = typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== "number" || !Number.isSafeInteger(n)) throw fail();
      // Beyond its column's range Postgres would fail the whole query (a 5xx or a misleading 422).
      if (type === "integer" && (n < INT4_MIN || n > INT4_MAX)) {
        throw filterError(`${name} takes integers from ${INT4_MIN} to ${INT4_MAX}, got ${n}`);
      }
      return n;
    }
    case "number": {
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n === "number" && Number.isFinite(n)) return n;
      throw fail();
    }
    case "boolean": {
      // The spellings the original's serializer took ("True", "1", 0, ...), as in request bodies.
      const flag = booleanFromText(value);
      if (typeof flag === "boolean") return flag;
      throw fail();
    }
    case "datetime": {
      const date = typeof value === "string" ? instantOf(value) : undefined;
      if (date === undefined) throw fail();
      return date;
    }
  }
}

/** An op as a client may spell it: ours, plus how to shape the value and whether to negate. */
interface OpSpelling {
  op: FilterOp;
  negate?: true;
  pattern?: (value: string) => string;
}

/**
 * The other spellings the original took: it looked an op up as SQLAlchemy's column method `op`,
 * `op_` or `__op__`, so `in`, `is` and `__eq__` worked, and so did `notlike`, `startswith`,
 * `endswith` and `contains` (LIKE patterns made as SQLAlchemy makes them, without escaping: `%`
 * and `_` in the value stay wildcards there too).
 */
const opSpellings: Record<string, OpSpelling> = {
  in: { op: "in_" },
  notin: { op: "notin_" },
  not_in: { op: "notin_" },
  is: { op: "is_" },
  is_not: { op: "isnot" },
  __eq__: { op: "eq" },
  __ne__: { op: "ne" },
  __lt__: { op: "lt" },
  __le__: { op: "le" },
  __gt__: { op: "gt" },
  __ge__: { op: "ge" },
  notlike: { op: "like", negate: true },
  not_like: { op: "like", negate: true },
  notilike: { op: "ilike", negate: true },
  not_ilike: { op: "ilike", negate: true },
  startswith: { op: "like", pattern: (value) => `${value}%` },
  endswith: { op: "like", pattern: (value) => `%${value}` },
  contains: { op: "like", pattern: (value) => `%${value}%` },
};

/** Every op name a filter may use: ours and the original's other spellings of them. */
export const FILTER_OP_NAMES: readonly string[] = [...ops, ...Object.keys(opSpellings)];

function spellingOf(op: unknown): OpSpelling | undefined {
  if (typeof op !== "string") return undefined;
  if (ops.has(op)) return { op: op as FilterOp };
  return Object.hasOwn(opSpellings, op) ? opSpellings[op] : undefined;
}

function checkKeys(raw: Record<string, unknown>): void {
  for (const key of Object.keys(raw)) {
    if (key !== "name" && key !== "op" && key !== "val") {
      throw filterError(`unknown key "${key}" in a condition`);
    }
  }
}

const relatedOps = new Set(["has", "any"]);

function condition(raw: Record<string, unknown>, spec: QuerySpec): FilterNode {
  checkKeys(raw);
  const { name, op, val } = raw;
  if (typeof name !== "string") throw filterError("each condition needs a name");
  // `has`/`any` on a name that is no relationship here: a nested one inside a `val` among them.
  if (typeof op === "string" && relatedOps.has(op)) {
    throw filterError(`"${name}" is not a relationship filterable here`);
  }
  const field = lookup(spec, name);
  if (!field) throw filterError(`unknown field "${name}"`);
  const spelling = spellingOf(op);
  if (!spelling) throw filterError(`unknown op ${JSON.stringify(op)} for "${name}"`);
  if (!("val" in raw)) throw filterError(`the condition on "${name}" needs a val`);
  const leaf = opCondition(name, field, spelling.op, val);
  if (spelling.pattern) leaf.value = spelling.pattern(leaf.value as string);
  return spelling.negate ? { not: leaf } : leaf;
}

type Leaf = Extract<FilterNode, { op: FilterOp }>;

/** One condition in our spelling of its op, its value checked and coerced. */
function opCondition(
  name: string,
  field: QueryField,
  op: FilterOp,
  val: unknown,
): Leaf {
  const node = { column: field.column, op, type: field.type, ...caselessOf(field) };
  switch (op) {
    case "is_":
    case "isnot":
      if (val !== null) throw filterError(`${op} takes only null`);
      return { ...node, value: null };
    case "in_":
    case "notin_":
      if (!Array.isArray(val)) throw filterError(`${op} takes an array`);
      if (val.length > maxConditions) {
        throw filterError(`${op} takes at most ${maxConditions} values`);
      }
      return { ...node, value: val.map((v) => coerce(name, field.type, v)) };
    case "like":
    case "ilike":
      if (field.type !== "string") throw filterError(`${op} works only on text fields`);
      if (typeof val !== "string") throw filterError(`${op} takes a string pattern`);
      if (val.includes("\u0000")) throw filterError(`${op} patterns cannot contain NUL`);
      // A backslash escapes the next character; one with nothing after it is no pattern.
      if (/(^|[^\\])(\\\\)*\\$/.test(val)) {
        throw filterError(`the ${op} pattern ends with a lone backslash`);
      }
      return { ...node, value: val };
    case "eq":
    case "ne":
      // SQLAlchemy, behind the original, turned `== None` into IS NULL; clients rely on it.
      if (val === null) return { ...node, value: null };
      return { ...node, value: coerce(name, field.type, val) };
    default:
      return { ...node, value: coerce(name, field.type, val) };
  }
}

/**
 * A filter through a relationship: its `val` is a filter (a condition, a list of them, or an
 * and/or/not group) on the related rows, read against their own attributes only, so a
 * relationship filter inside it is refused (they do not nest).
 */
function relatedCondition(
  raw: Record<string, unknown>,
  related: RelatedFilter | AbsentRelated,
  depth: number,
  counter: { n: number },
): FilterNode {
  checkKeys(raw);
  const { name, op, val } = raw;
  const expected = related.many ? "any" : "has";
  if (op !== expected) {
    throw filterError(
      `"${name}" is a to-${related.many ? "many" : "one"} relationship, filtered with ` +
        `"${expected}", not ${JSON.stringify(op)}`,
    );
  }
  if (!Array.isArray(val) && !isObject(val)) {
    throw filterError(`the val of "${name}" must be a filter on what it relates to`);
  }
  return { related, filter: node(val, { fields: related.fields }, depth, counter) };
}

function node(raw: unknown, spec: QuerySpec, depth: number, counter: { n: number }): FilterNode {
  // `depth` counts the and/or/not groups (the top-level array is one) around this node.
  const group = () => {
    if (depth + 1 > maxDepth) throw filterError(`groups nest deeper than ${maxDepth} levels`);
    return depth + 1;
  };
  if (Array.isArray(raw)) {
    const level = group();
    return { and: raw.map((item) => node(item, spec, level, counter)) };
  }
  if (!isObject(raw)) throw filterError("each condition must be an object");
  const keys = Object.keys(raw);
  const only = keys.length === 1 ? keys[0] : undefined;
  if (only === "and" || only === "or") {
    const items = raw[only];
    if (!Array.isArray(items)) throw filterError(`"${only}" takes an array`);
    const level = group();
    const children = items.map((item) => node(item, spec, level, counter));
    return only === "and" ? { and: children } : { or: children };
  }
  if (only === "not") return { not: node(raw.not, spec, group(), counter) };
  if (++counter.n > maxConditions) throw filterError(`more than ${maxConditions} conditions`);
  const related = typeof raw.name === "string" ? named(spec.relationships, raw.name) : undefined;
  // Its `val` counts as a group: the depth bound holds through relationships too.
  return related ? relatedCondition(raw, related, group(), counter) : condition(raw, spec);
}

// The filter: a JSON array of conditions (all must hold) or one `{"and"|"or": [...]}` /
// `{"not": {...}}` object, as `rawFilterOf` reads it from either form.
function parseFilter(raw: unknown, spec: QuerySpec): FilterNode | undefined {
  if (Array.isArray(raw) && raw.length === 0) return undefined;
  return node(raw, spec, 0, { n: 0 });
}

/**
 * The sort keys, each column once, where it first comes: a later mention orders nothing the first
 * did not (rows it would order are equal in that column). Every key nested the ORDER BY one level
 * deeper, so `sort=id,id,...` repeated a few thousand times overflowed the stack: a 500.
 */
function parseSort(text: string, spec: QuerySpec): SortKey[] {
  const keys = new Map<string, SortKey>();
  for (const part of text.split(",")) {
    const key = part.trim();
    const desc = key.startsWith("-");
    const name = desc ? key.slice(1) : key;
    const field = name ? lookup(spec, name) : undefined;
    if (!field) {
      throw new BadRequestError(`Cannot sort: unknown sort key "${key}"`, { parameter: "sort" });
    }
    if (!keys.has(field.column)) {
      keys.set(field.column, { column: field.column, desc, ...caselessOf(field) });
    }
  }
  return [...keys.values()];
}

/** `{ caseless: true }` for a caseless field, else nothing: other keys stay as they were. */
function caselessOf(field: QueryField): { caseless?: true } {
  return field.caseless ? { caseless: true } : {};
}

/**
 * A page value as the original's Python `int()` read it: spaces around, a sign, leading zeros and
 * single underscores between digits (`1_0` is 10, PEP 515). Its other readings (`int()` also took
 * other scripts' digits, `\uff12`) stay a 400, as does a value under `min`: the original sent a
 * negative LIMIT or OFFSET to Postgres, whose error was a 500.
 */
const PYTHON_INT = /^\s*([+-]?)(\d+(?:_\d+)*)\s*$/;

function pageValue(
  query: Record<string, string>,
  key: string,
  fallback: number,
  bounds: { min: number; max: number },
) {
  const text = query[key];
  if (text === undefined) return fallback;
  const match = PYTHON_INT.exec(text);
  const n = match ? Number(match[1] + match[2].replaceAll("_", "")) : NaN;
  // An integer too large to read exactly (or to page by) says so, not that it is none.
  if (n > bounds.max) {
    throw new BadRequestError(`Cannot page: ${key} must be at most ${bounds.max}`, {
      parameter: key,
    });
  }
  if (!Number.isSafeInteger(n) || n < bounds.min) {
    throw new BadRequestError(`Cannot page: ${key} must be an integer of at least ${bounds.min}`, {
      parameter: key,
    });
  }
  // `-0` is 0, as in Python.
  return n + 0;
}

function parsePage(query: Record<string, string>) {
  const size = pageValue(query, "page[size]", defaultPageSize, { min: 0, max: maxPageSize });
  const number = pageValue(query, "page[number]", 1, { min: 1, max: Number.MAX_SAFE_INTEGER });
  return { size, number };
}

/**
 * How many relationships one `include` may go through, each counted once however many paths
 * share it (`tickets,tickets.event`: 2). Each is a query; every name an event has (35, most of
 * them placeholders) fits, while the hundreds of dotted paths a route allows cannot all be asked
 * at once (a review measured 350 paths on a list of 100 events at ~100 queries, 170–240 ms).
 */
export const MAX_INCLUDED_RELATIONSHIPS = 40;

function parseInclude(text: string, allowed: string[] = []): string[] {
  const sent = text.split(",").map((p) => p.trim());
  const paths = includePaths(text);
  for (const [i, path] of paths.entries()) {
    if (!allowed.includes(path)) {
      throw new BadRequestError(`Cannot include: "${sent[i]}" is not an include path here`, {
        parameter: "include",
      });
    }
  }
  const relationships = new Set(
    paths.flatMap((path) => path.split(".").map((_, i, names) => names.slice(0, i + 1).join("."))),
  );
  if (relationships.size > MAX_INCLUDED_RELATIONSHIPS) {
    throw new BadRequestError(
      `Cannot include: ${relationships.size} relationships asked, at most ` +
        `${MAX_INCLUDED_RELATIONSHIPS} at once`,
      { parameter: "include" },
    );
  }
  return [...new Set(paths)];
}

const fieldsKey = /^fields\[([^\]]+)\]$/;

/**
 * The fieldset of `type` that another service passed on over the bus (`<service>.resolve`,
 * `resolve-related`: the gateway hands over the request's `fields`), checked with the rules of
 * the type's own routes: an unknown name is a 400 naming `fields[<type>]`. Undefined when none.
 *
 * @example
 * ```ts
 * import { checkFieldset } from "@shared/query.ts";
 * checkFieldset({ ticket: ["name"] }, "ticket", ["name", "price"]); // ["name"]
 * ```
 */
export function checkFieldset(
  fields: Record<string, string[]> | undefined,
  type: string,
  allowed: string[],
): string[] | undefined {
  const names = fields?.[type];
  if (names === undefined) return undefined;
  return parseFields(`fields[${type}]`, names.join(","), { [type]: allowed });
}

function parseFields(key: string, text: string, sparse: Record<string, string[]>): string[] {
  const type = fieldsKey.exec(key)![1];
  const allowed = Object.hasOwn(sparse, type) ? sparse[type] : undefined;
  if (!allowed) {
    throw new BadRequestError(`Cannot select fields: unknown type "${type}"`, { parameter: key });
  }
  const sent = text === "" ? [] : text.split(",").map((n) => n.trim());
  const names = fieldsetNames(text);
  for (const [i, name] of names.entries()) {
    const foreign = allowed.includes("*") && /^[a-z][a-z0-9-]{0,63}$/.test(name);
    if (!foreign && !allowed.includes(name) && name !== "id") {
      throw new BadRequestError(`Cannot select fields: "${sent[i]}" is not a field of ${type}`, {
        parameter: key,
      });
    }
  }
  // `id` is always sent (JSON:API: a fieldset names attributes and relationships), but the
  // original's schemas declared it, so its clients may list it (`fields[event]=id,name`).
  return names.filter((name) => name !== "id");
}

/**
 * The include/fields/extra part of a query, for single-resource routes: `sort`, `filter` and
 * `page[...]` are ignored, and so is every name outside the JSON:API families (`isForeign`).
 *
 * @example
 * ```ts
 * import { parseSingleQuery } from "@shared/query.ts";
 * parseSingleQuery({ include: "event" }, { includes: ["event"] });
 * // { include: ["event"], fields: {}, extra: {} }
 * ```
 */
export function parseSingleQuery(
  query: Record<string, string>,
  spec: Pick<QuerySpec, "includes" | "sparse" | "extra">,
): Pick<ListQuery, "include" | "fields" | "extra"> {
  // A list's parameters mean nothing to one resource: ignored, as the original's detail views
  // read only include and fields.
  return parse(query, spec, listKeys);
}

/**
 * A relationship route's query rules: its parent's, with only the include paths that start at
 * the relationship (`tickets` on `/v1/events/1/relationships/tickets`), so what is included is
 * reached from the linkage, as JSON:API's full linkage asks; other paths are a 400 there.
 *
 * @example
 * ```ts
 * import { relationshipQuerySpec } from "@shared/query.ts";
 * relationshipQuerySpec({ includes: ["tickets", "owner"] }, "tickets").includes; // ["tickets"]
 * ```
 */
export function relationshipQuerySpec<S extends Pick<QuerySpec, "includes">>(
  spec: S,
  relationship: string,
): S {
  const starts = (path: string) => path === relationship || path.startsWith(`${relationship}.`);
  return { ...spec, includes: (spec.includes ?? []).filter(starts) };
}

function parse(
  query: Record<string, string>,
  spec: Pick<QuerySpec, "includes" | "sparse" | "extra">,
  listKeys: Set<string>,
): Pick<ListQuery, "include" | "fields" | "extra"> {
  const out: Pick<ListQuery, "include" | "fields" | "extra"> = {
    include: [],
    fields: {},
    extra: {},
  };
  for (const [key, value] of Object.entries(query)) {
    if (listKeys.has(key) || isBracketedFilter(key)) continue;
    if (isForeign(key) && !spec.extra?.includes(key)) continue;
    // An empty include or sort is none, as the original read them (`if qs.get("include")`).
    if (key === "include") out.include = value.trim() ? parseInclude(value, spec.includes) : [];
    else if (fieldsKey.test(key)) {
      out.fields[fieldsKey.exec(key)![1]] = parseFields(key, value, spec.sparse ?? {});
    } else if (spec.extra?.includes(key)) out.extra[key] = value;
    else {
      throw new BadRequestError(`Cannot read query: unknown parameter "${key}"`, {
        parameter: key,
      });
    }
  }
  return out;
}

const listKeys = new Set(["filter", "sort", "page[size]", "page[number]"]);

/** The JSON:API query families: a name in one of them must be one this route understands. */
const FAMILY = /^(?:filter|sort|include|page|fields)(?:\[|$)/;

/**
 * Whether a parameter lies outside the JSON:API families. The original read only those and
 * ignored every other name, and its clients rely on that: open-event-frontend adds `public`,
 * `cache` and `nocache`, and ember-data's `queryRecord` puts its whole query in the URL (the
 * checkout lookup arrives with `code` and `eventIdentifier`). A route's own `extra` names are
 * read, the rest ignored; a name inside a family that the route does not know stays a 400.
 */
function isForeign(key: string): boolean {
  return !FAMILY.test(key);
}

/**
 * Parses a list route's query against its whitelist; every unknown name in a JSON:API family is
 * a 400 whose `source.parameter` names the offending parameter (other names are ignored).
 *
 * @example
 * ```ts
 * import { parseListQuery } from "@shared/query.ts";
 * parseListQuery({ "page[size]": "10", "page[number]": "2", sort: "name" }, {
 *   fields: { name: { column: "name", type: "string" } },
 * }); // { sort: [{ column: "name", desc: false }], page: { size: 10, number: 2 }, ... }
 * ```
 */
export function parseListQuery(query: Record<string, string>, spec: QuerySpec): ListQuery {
  const rest = parse(query, spec, listKeys);
  const result: ListQuery = {
    sort: query.sort?.trim() ? parseSort(query.sort, spec) : [...(spec.defaultSort ?? [])],
    page: parsePage(query),
    ...rest,
  };
  const raw = rawFilterOf(query);
  if (raw !== undefined) {
    const filter = parseFilter(raw, spec);
    if (filter) result.filter = filter;
  }
  return result;
}

/** What a related route hands to the owner of the resources it returns, and the rest. */
export interface OwnerQuery {
  /** `include` paths, dashed and each once (the owner checks them). */
  include: string[];
  /** `fields[<type>]` as sent, type -> names (the owner checks them). */
  fields: Record<string, string[]>;
  /** Every other parameter, for the route itself to check. */
  rest: Record<string, string>;
}

/**
 * Splits a related route's query whose resources another service owns: `include` and
 * `fields[...]` follow the rules of that type's own routes, so they go to its owner's resolve
 * endpoint (which answers 400 for what those routes would refuse); the rest stays here.
 *
 * @example
 * ```ts
 * import { ownerQueryOf } from "@shared/query.ts";
 * ownerQueryOf({ include: "event-topic", "fields[event]": "name", get_trashed: "true" });
 * // { include: ["event-topic"], fields: { event: ["name"] }, rest: { get_trashed: "true" } }
 * ```
 */
export function ownerQueryOf(query: Record<string, string>): OwnerQuery {
  const out: OwnerQuery = { include: [], fields: {}, rest: {} };
  for (const [key, value] of Object.entries(query)) {
    const type = fieldsKey.exec(key)?.[1];
    if (key === "include") out.include = ownerIncludePaths(value);
    else if (type !== undefined) {
      out.fields[type] = value === "" ? [] : value.split(",").map((name) => name.trim());
    } else out.rest[key] = value;
  }
  return out;
}

/**
 * A related route's `include` as its owner will read it: dashed (`discount_codes`, as the original
 * took it), each path once. The owner checks the paths; an empty one (lost in the query text it
 * reads: `include=,` would be none) and more distinct paths than it allows relationships (each path
 * is at least one; the bus request carries at most that many) are its 400s, said here before.
 */
function ownerIncludePaths(value: string): string[] {
  const paths = [...new Set(includePaths(value))];
  // Said here: `include=,` would reach the owner as no include at all.
  if (paths.includes("")) {
    throw new BadRequestError(`Cannot include: "" is not an include path here`, {
      parameter: "include",
    });
  }
  if (paths.length > MAX_INCLUDED_RELATIONSHIPS) {
    throw new BadRequestError(
      `Cannot include: ${paths.length} paths asked, at most ${MAX_INCLUDED_RELATIONSHIPS} ` +
        `relationships at once`,
      { parameter: "include" },
    );
  }
  return paths;
}

/**
 * The query an owner checks for its resolve endpoint, rebuilt from what `ownerQueryOf` split off:
 * the owner parses it with the rules of its type's own routes.
 */
export function ownerQueryText(
  owner: Pick<OwnerQuery, "include" | "fields">,
): Record<string, string> {
  const query: Record<string, string> = {};
  if (owner.include.length) query.include = owner.include.join(",");
  for (const [type, names] of Object.entries(owner.fields)) {
    query[`fields[${type}]`] = names.join(",");
  }
  return query;
}
