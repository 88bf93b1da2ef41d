/**
 * How the names in a `fields[<type>]` or `include` value are read, in a module of its own: the
 * gateway reads fieldsets too (to trim other services' included resources) and include paths (to
 * tag cached lists), and must not load shared/query.ts, whose lenient parsers bring zod
 * (gateway/footprint_test.ts).
 */

/**
 * The names a `fields[<type>]` value lists, dashed: the original checked them against its
 * schemas' Python names (`valid_from`), so its clients wrote them so, while JSON:API's are
 * dashed (`valid-from`); no attribute or relationship name here has an underscore of its own.
 * An empty value names none (valid JSON:API: just type and id).
 *
 * @example
 * ```ts
 * import { fieldsetNames } from "@shared/fieldset_names.ts";
 * fieldsetNames("code, valid_from"); // ["code", "valid-from"]
 * ```
 */
export function fieldsetNames(text: string): string[] {
  return text === "" ? [] : text.split(",").map((name) => name.trim().replaceAll("_", "-"));
}

/**
 * The paths an `include` value lists, trimmed and dashed: the original's flask-rest-jsonapi
 * turned dashes into underscores before it looked a path up among its schemas' Python names
 * (`event_sub_topic`), so it took either spelling, and its clients may send either. An empty
 * value lists none.
 *
 * @example
 * ```ts
 * import { includePaths } from "@shared/fieldset_names.ts";
 * includePaths("event_topic, tickets.event_sub-topic"); // ["event-topic", "tickets.event-sub-topic"]
 * ```
 */
export function includePaths(text: string): string[] {
  return text.trim() === "" ? [] : text.split(",").map((path) => path.trim().replaceAll("_", "-"));
}
