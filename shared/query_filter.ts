/**
 * How a list's filter is read off the query, before it is checked against a resource: the JSON
 * `filter` parameter (the original's form) or the bracketed form jQuery.param gives it. Its own
 * module, free of zod and the payload schemas, because the gateway's cache tags read filters too
 * (shared/cache_tags.ts) and the gateway starts without those (gateway/footprint_test.ts).
 */
import { BadRequestError } from "./errors.ts";

/** The deepest nesting of and/or/not groups a filter may have. */
export const MAX_DEPTH = 5;
/** The most conditions (and `in_` values) a filter may hold. */
export const MAX_CONDITIONS = 50;
const maxDepth = MAX_DEPTH;
const maxConditions = MAX_CONDITIONS;

/** A 400 naming the `filter` parameter. */
export function filterError(detail: string): BadRequestError {
  return new BadRequestError(`Cannot filter: ${detail}`, { parameter: "filter" });
}

/** A key of the bracketed form: `filter[<n>]` and more brackets (`filter[0][and][0][name]`). */
const BRACKETED_FILTER = /^filter\[\d+\]/;
const BRACKETS = /^filter(?:\[[^[\]]*\])+$/;
const INDEX = /^(?:0|[1-9]\d*)$/;
/**
 * The most brackets a key of a filter within the depth bound has: the top-level array's index,
 * two for each further group (`[and][0]`; a relationship's `[val][0]` counts as one), and two
 * for the condition's value (`[val][0]` of `in_`).
 */
const maxBrackets = 2 * maxDepth + 1;
/** The most keys a filter within the bounds has: each condition's name, op and `in_` values. */
const maxBracketKeys = maxConditions * (maxConditions + 2);

/** Whether a parameter belongs to the bracketed form of the filter (`filter[0]...`). */
export function isBracketedFilter(key: string): boolean {
  return BRACKETED_FILTER.test(key);
}

/**
 * The path of one key of the bracketed form (`filter[0][val][1]` -> ["0", "val", "1"]), checked
 * against the bounds before anything is built: a filter within the JSON form's depth and
 * condition bounds needs no more brackets, nor an index past the number of conditions.
 */
function bracketPath(key: string): string[] {
  const refuse = (why: string) =>
    new BadRequestError(`Cannot filter: ${key} ${why}`, { parameter: key });
  if (!BRACKETS.test(key)) throw refuse("is not a filter[<n>][<name>]... parameter");
  const path = key.slice("filter[".length, -1).split("][");
  if (path.length > maxBrackets) throw refuse(`has more than ${maxBrackets} brackets`);
  for (const segment of path) {
    if (segment === "") throw refuse("has empty brackets: each needs an index or a name");
    if (/^\d+$/.test(segment) && (!INDEX.test(segment) || Number(segment) >= maxConditions)) {
      throw refuse(`has an index other than 0 to ${maxConditions - 1}`);
    }
  }
  return path;
}

/** A key jQuery.param gives each item of an array of plain values: `filter[0][val][]`. */
const PUSHED = /^(filter\[\d+\](?:\[[^[\]]*\])*)\[\]$/;

/** `filter[0][val][1]` -> `filter[0]`, `filter[0][val]`, `filter[0][val][1]`; none past the bound. */
function prefixesOf(key: string): string[] {
  const ends = [...key.matchAll(/\]/g)].map((match) => match.index);
  return ends.length > maxBrackets + 1 ? [] : ends.map((end) => key.slice(0, end + 1));
}

/**
 * A query's pairs with the items of each jQuery-style array numbered in the order sent
 * (`filter[0][val][]=a&filter[0][val][]=b` -> `filter[0][val][0]=a&filter[0][val][1]=b`, as
 * jQuery.param and ember-fetch write `val: ["a", "b"]`), every other pair as it came: done before
 * a repeated name counts with its first value (gateway/forward.ts `queryOf`), which would keep
 * `a` alone. Such a key whose array is sent another way too (`filter[0][val]=x`,
 * `filter[0][val][0]=x`) is left as sent, a 400 naming it (its empty brackets).
 *
 * @example
 * ```ts
 * import { numberPushedItems } from "@shared/query_filter.ts";
 * numberPushedItems([["filter[0][val][]", "a"], ["filter[0][val][]", "b"]]);
 * // [["filter[0][val][0]", "a"], ["filter[0][val][1]", "b"]]
 * ```
 */
export function numberPushedItems(pairs: Iterable<[string, string]>): [string, string][] {
  const all = [...pairs];
  const pushed = new Set(all.map(([key]) => PUSHED.exec(key)?.[1]).filter((p) => p !== undefined));
  if (pushed.size === 0) return all;
  const clashing = new Set<string>();
  for (const [key] of all) {
    if (PUSHED.test(key) || !isBracketedFilter(key)) continue;
    for (const prefix of prefixesOf(key)) if (pushed.has(prefix)) clashing.add(prefix);
  }
  const next = new Map<string, number>();
  return all.map(([key, value]) => {
    const prefix = PUSHED.exec(key)?.[1];
    if (prefix === undefined || clashing.has(prefix)) return [key, value];
    const index = next.get(prefix) ?? 0;
    next.set(prefix, index + 1);
    return [`${prefix}[${index}]`, value];
  });
}

type Branch = Map<string, Branch | string>;

/**
 * The op spellings that take null, as SQLAlchemy behind the original read `== None` (IS NULL):
 * `eq`, `ne`, `is_`, `isnot`, and the other names query.ts takes for them. jQuery.param and
 * ember-fetch write a `val: null` as an empty value, so there an empty value is null; with any
 * other op it stays the text `""` (an empty `like` pattern, a 400 for a date-time).
 */
export const NULL_TAKING_OPS: ReadonlySet<string> = new Set([
  "eq",
  "ne",
  "is_",
  "isnot",
  "is",
  "is_not",
  "__eq__",
  "__ne__",
]);

/** A condition's empty `val` as null where its op takes null (`NULL_TAKING_OPS`). */
function withNull(object: Record<string, unknown>): Record<string, unknown> {
  const { op, val } = object;
  const takesNull = val === "" && typeof op === "string" && NULL_TAKING_OPS.has(op);
  return takesNull ? { ...object, val: null } : object;
}

/**
 * The JSON value a branch stands for: numeric keys make an array (indices 0 to n-1, no gaps),
 * names an object, a leaf the string the URL carried.
 */
function branchValue(branch: Branch, at: string): unknown {
  const keys = [...branch.keys()];
  const indices = keys.filter((key) => INDEX.test(key));
  const value = (key: string) => {
    const child = branch.get(key)!;
    return typeof child === "string" ? child : branchValue(child, `${at}[${key}]`);
  };
  if (indices.length === 0) {
    return withNull(Object.fromEntries(keys.map((key) => [key, value(key)])));
  }
  if (indices.length < keys.length) throw filterError(`${at} mixes indices and names`);
  // Indices are distinct and canonical, so n of them below n are exactly 0..n-1.
  const gap = indices.find((key) => Number(key) >= keys.length);
  if (gap !== undefined) throw filterError(`${at}[${gap}] leaves a gap in the indices before it`);
  return Array.from({ length: keys.length }, (_, i) => value(String(i)));
}

/** The filter the bracketed keys carry, as the JSON form would: undefined when none is sent. */
function bracketedFilter(query: Record<string, string>): unknown {
  const keys = Object.keys(query).filter(isBracketedFilter);
  if (keys.length === 0) return undefined;
  if (keys.length > maxBracketKeys) {
    throw filterError(`more than ${maxBracketKeys} filter[...] parameters`);
  }
  const paths = keys.map(bracketPath);
  const root: Branch = new Map();
  keys.forEach((key, i) => {
    let branch = root;
    const path = paths[i];
    for (const [depth, segment] of path.entries()) {
      const child = branch.get(segment);
      const last = depth === path.length - 1;
      if (last ? child !== undefined : typeof child === "string") {
        const at = `filter[${path.slice(0, depth + 1).join("][")}]`;
        throw filterError(`${at} is both a value and a group`);
      }
      if (last) branch.set(segment, query[key]);
      else {
        const next: Branch = (child as Branch | undefined) ?? new Map();
        branch.set(segment, next);
        branch = next;
      }
    }
  });
  return branchValue(root, "filter");
}

/**
 * The filter a query carries, as the JSON value of its `filter` parameter (the original's form),
 * or rebuilt from the bracketed form jQuery.param gives it (`filter[0][and][0][name]=...`, which
 * open-event-frontend's has-many queries send): one reading for every consumer, so a list and
 * its cache tags agree. Undefined when there is none; sending both forms is a 400.
 *
 * @example
 * ```ts
 * import { rawFilterOf } from "@shared/query_filter.ts";
 * rawFilterOf({ "filter[0][name]": "code", "filter[0][op]": "eq", "filter[0][val]": "X" });
 * // [{ name: "code", op: "eq", val: "X" }]
 * ```
 */
export function rawFilterOf(query: Record<string, string>): unknown {
  const bracketed = bracketedFilter(query);
  if (query.filter === undefined) return bracketed;
  if (bracketed !== undefined) {
    throw filterError("it is sent both as filter and as filter[0]...: send one");
  }
  try {
    return JSON.parse(query.filter);
  } catch {
    throw filterError("it is not valid JSON");
  }
}
