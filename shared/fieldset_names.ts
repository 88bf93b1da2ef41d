/**
 * How a `fields[<type>]` value is read, in a module of its own: the gateway reads fieldsets too
 * (to trim other services' included resources), and must not load shared/query.ts, whose
 * lenient parsers bring zod (gateway/footprint_test.ts).
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
