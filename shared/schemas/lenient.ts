/**
 * Numbers and booleans as the original server accepted them. Its serializer (marshmallow) read
 * `"tickets-number": "404"` and `"is-active": "false"`, and its own documentation examples send
 * them that way, so existing clients do. Every service builds its integer, decimal and boolean
 * attributes from these; responses keep real JSON types (they come from the database).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { lenientBoolean, lenientNumber } from "@shared/schemas/lenient.ts";
 * const schema = z.object({
 *   "quantity": lenientNumber(z.number().int().min(0)),
 *   "is-active": lenientBoolean(),
 * });
 * schema.parse({ "quantity": "404", "is-active": "False" }); // { quantity: 404, "is-active": false }
 * ```
 */
import { z } from "zod";

/** A plain decimal: optional sign, digits, optional fraction (no exponent, no spaces inside). */
const NUMERIC_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/** What marshmallow's Boolean field took as true and as false. */
const TRUTHY = new Set<unknown>([true, 1, "1", "true", "True", "TRUE", "t", "T"]);
const FALSY = new Set<unknown>([false, 0, "0", "false", "False", "FALSE", "f", "F"]);

/** A numeric string becomes its number; anything else is left for the schema to refuse. */
export function numberFromText(input: unknown): unknown {
  if (typeof input !== "string") return input;
  const text = input.trim();
  return NUMERIC_TEXT.test(text) ? Number(text) : input;
}

/** A boolean spelling the original accepted becomes the boolean; anything else is left as is. */
export function booleanFromText(input: unknown): unknown {
  if (TRUTHY.has(input)) return true;
  if (FALSY.has(input)) return false;
  return input;
}

/**
 * `schema` (a number schema with its own bounds, `int()` for integers) that also takes numeric
 * strings: `"404"` passes as 404, `"4.5"` fails `int()`, `"abc"` and `""` fail as "must be a
 * number", each with the attribute's pointer.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { lenientNumber } from "@shared/schemas/lenient.ts";
 * lenientNumber(z.number().int().min(0)).parse("12"); // 12
 * ```
 */
export function lenientNumber<T extends z.ZodType<number>>(schema: T) {
  return z.preprocess(numberFromText, schema);
}

/**
 * A boolean that also takes `"true"`, `"false"`, `"True"`, `"False"`, `"1"`, `"0"`, `1` and `0`
 * (and the rest of what marshmallow accepted: `"TRUE"`, `"t"`, `"F"`, ...).
 *
 * @example
 * ```ts
 * import { lenientBoolean } from "@shared/schemas/lenient.ts";
 * lenientBoolean().parse("0"); // false
 * ```
 */
export function lenientBoolean() {
  return z.preprocess(booleanFromText, z.boolean());
}
