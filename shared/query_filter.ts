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

type Branch = Map<string, Branch | string>;

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
  if (indices.length === 0) return Object.fromEntries(keys.map((key) => [key, value(key)]));
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
