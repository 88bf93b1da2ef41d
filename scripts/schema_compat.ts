/**
 * Whether a change of a JSON Schema can break a reader that relied on the old one: the gate of
 * `deno task fact-schemas` (scripts/fact_schemas.ts) asks it of every recorded fact schema.
 *
 * A subscriber validated and coded against the old schema, so whatever the producer may publish
 * under the new one must still be something the old one promised (`incompatibilities`): no
 * widening (an enum or const widened or dropped, a format dropped or changed, a bound, length, item
 * count or pattern dropped or loosened, a new alternative). And the stream keeps a year of facts
 * that subscribers validate with today's schema, so every fact published under the old one must
 * still match the new one (`narrowings`): no narrowing either (fewer enum values, a tighter bound,
 * a format or an enum where a free string was). What remains free: an optional property added,
 * annotations (title, description, ...). As the README's evolution rules say, the JSON types and
 * which properties are required must stay as they were too. Keywords this file does not
 * understand must stay as they were.
 */
import { isDeepStrictEqual } from "node:util";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";

type Schema = Record<string, unknown>;

/** Keywords that only document: changing them breaks nobody. */
const ANNOTATIONS = new Set([
  "title",
  "description",
  "examples",
  "default",
  "deprecated",
  "readOnly",
  "writeOnly",
  "$comment",
  "$schema",
  "$id",
]);

/** A bound as the schema states it: the keyword (for messages), its value, whether exclusive. */
interface Bound {
  keyword: string;
  value: number;
  exclusive: boolean;
}

/** How to read one side of a range from a schema; `sign` is 1 for a lower bound, -1 for upper. */
interface Limit {
  keywords: string[];
  sign: 1 | -1;
}

const LIMITS: Limit[] = [
  { keywords: ["minimum", "exclusiveMinimum"], sign: 1 },
  { keywords: ["maximum", "exclusiveMaximum"], sign: -1 },
  { keywords: ["minLength"], sign: 1 },
  { keywords: ["maxLength"], sign: -1 },
  { keywords: ["minItems"], sign: 1 },
  { keywords: ["maxItems"], sign: -1 },
  { keywords: ["minProperties"], sign: 1 },
  { keywords: ["maxProperties"], sign: -1 },
];

/** Keywords compared by meaning below; any other non-annotation keyword must stay as it was. */
const COMPARED = new Set([
  "type",
  "anyOf",
  "oneOf",
  "enum",
  "const",
  "format",
  "properties",
  "required",
  "items",
  ...LIMITS.flatMap((limit) => limit.keywords),
]);

/**
 * The alternatives of a schema, one JSON type each: `anyOf`, `oneOf` (read as `anyOf`, which
 * admits at least as much) and type arrays unfolded, keywords beside them kept in each, lists of
 * values merged, and lists whose every value another alternative admits left out (they add
 * nothing: `"x"` beside any string).
 */
function variants(schema: Schema): Schema[] {
  const all = mergeValueLists(alternativesOf(schema));
  const open = all.filter((variant) => !onlyValues(variant));
  if (!open.length) return all;
  return all.filter((variant) =>
    !onlyValues(variant) || !admitsAll({ anyOf: open }, allowedValues(variant)!)
  );
}

const ajv = new Ajv({ strict: false });
// ajv-formats is CommonJS: its function is the default export of the module object.
addFormats.default(ajv);

/** Whether `schema` admits every one of `values` (false when it cannot be compiled). */
function admitsAll(schema: Schema, values: unknown[]): boolean {
  try {
    const validate = ajv.compile(schema);
    return values.every((value) => validate(value));
  } catch {
    return false;
  }
}

/** Whether a variant only lists values (`const` or `enum`, beside its type and annotations). */
function onlyValues(variant: Schema): boolean {
  return allowedValues(variant) !== undefined &&
    Object.keys(variant).every((key) =>
      key === "type" || key === "const" || key === "enum" || ANNOTATIONS.has(key)
    );
}

/**
 * Alternatives of one type that only list values, merged into one enum: `z.union([z.literal("a"),
 * z.literal("b")])` admits what `z.enum(["a", "b"])` admits, and each side must be read so.
 */
function mergeValueLists(list: Schema[]): Schema[] {
  const merged = new Map<string, unknown[]>();
  const rest: Schema[] = [];
  for (const variant of list) {
    if (!onlyValues(variant)) {
      rest.push(variant);
      continue;
    }
    const type = typeOf(variant);
    merged.set(type, [...(merged.get(type) ?? []), ...allowedValues(variant)!]);
  }
  const lists = [...merged].map(([type, values]) =>
    type === "any" ? { enum: values } : { type, enum: values }
  );
  return [...rest, ...lists];
}

function alternativesOf(schema: Schema): Schema[] {
  for (const keyword of ["anyOf", "oneOf"]) {
    const alternatives = schema[keyword];
    if (!Array.isArray(alternatives)) continue;
    const { [keyword]: _, ...beside } = schema;
    return (alternatives as Schema[]).flatMap((alternative) =>
      alternativesOf({ ...beside, ...alternative })
    );
  }
  if (Array.isArray(schema.type)) {
    return (schema.type as string[]).map((type) => ({ ...schema, type }));
  }
  return [schema];
}

/**
 * A variant's JSON type; for a list of values without one, the type they all share when it is
 * one of string, boolean or null (numbers stay "any": integer or number cannot be told).
 */
function typeOf(variant: Schema): string {
  if (variant.type !== undefined) return String(variant.type);
  const types = new Set(allowedValues(variant)?.map(valueType));
  const [only] = types;
  return types.size === 1 && only !== undefined ? only : "any";
}

function valueType(value: unknown): string | undefined {
  if (value === null) return "null";
  return typeof value === "string" || typeof value === "boolean" ? typeof value : undefined;
}

function typesOf(list: Schema[]): string[] {
  return [...new Set(list.map(typeOf))].sort();
}

/** "changed type from string to null|string (it became nullable)". */
function typeChange(was: string[], now: string[], path: string): string {
  const gained = now.filter((type) => !was.includes(type));
  const lost = was.filter((type) => !now.includes(type));
  const why = [
    gained.length && (gained.join() === "null" ? "it became nullable" : `it may now be ${gained}`),
    lost.length &&
    (lost.join() === "null" ? "it is no longer nullable" : `it is no longer ${lost}`),
  ].filter(Boolean).join("; ");
  return `${path} changed type from ${was.join("|")} to ${now.join("|")} (${why})`;
}

/** The only values a schema admits, when it lists them (`const` or `enum`). */
function allowedValues(schema: Schema): unknown[] | undefined {
  if ("const" in schema) return [schema.const];
  return Array.isArray(schema.enum) ? schema.enum : undefined;
}

function valueProblems(old: Schema, now: Schema, path: string): string[] {
  const allowed = allowedValues(old);
  if (!allowed) return [];
  const was = allowed.length === 1
    ? JSON.stringify(allowed[0])
    : `one of ${JSON.stringify(allowed)}`;
  const values = allowedValues(now);
  if (!values) return [`${path} may now be any ${typeOf(now)} (was ${was})`];
  const added = values.filter((value) => !allowed.some((a) => isDeepStrictEqual(a, value)));
  return added.length ? [`${path} may now be ${JSON.stringify(added)} (was ${was})`] : [];
}

function formatProblems(old: Schema, now: Schema, path: string): string[] {
  if (old.format === undefined || old.format === now.format) return [];
  if (now.format === undefined) return [`${path} no longer has format ${old.format}`];
  return [`${path} changed format from ${old.format} to ${now.format}`];
}

/** The tightest bound a schema states on one side (draft 7 and draft 4 exclusive forms). */
function boundOf(schema: Schema, limit: Limit): Bound | undefined {
  const [inclusive, exclusive] = limit.keywords;
  const bounds: Bound[] = [];
  if (typeof schema[inclusive] === "number") {
    const draft4 = exclusive !== undefined && schema[exclusive] === true;
    bounds.push({ keyword: inclusive, value: schema[inclusive] as number, exclusive: draft4 });
  }
  if (exclusive !== undefined && typeof schema[exclusive] === "number") {
    bounds.push({ keyword: exclusive, value: schema[exclusive] as number, exclusive: true });
  }
  return bounds.length ? bounds.reduce((a, b) => isLooser(a, b, limit) ? b : a) : undefined;
}

/** Whether `now` admits a value beyond `old` (on the side `limit` is about). */
function isLooser(now: Bound, old: Bound, limit: Limit): boolean {
  const a = limit.sign * now.value;
  const b = limit.sign * old.value;
  return a < b || (a === b && old.exclusive && !now.exclusive);
}

function boundProblems(old: Schema, now: Schema, path: string): string[] {
  return LIMITS.flatMap((limit) => {
    const was = boundOf(old, limit);
    if (!was) return [];
    const is = boundOf(now, limit);
    if (!is) return [`${path} no longer has ${was.keyword} ${was.value}`];
    if (!isLooser(is, was, limit)) return [];
    return [`${path} loosened ${was.keyword} ${was.value} to ${is.keyword} ${is.value}`];
  });
}

/** A keyword not compared by meaning: it must stay as it was (it may be added: that narrows). */
function keptProblems(old: Schema, now: Schema, path: string): string[] {
  return Object.keys(old).flatMap((keyword) => {
    if (ANNOTATIONS.has(keyword) || COMPARED.has(keyword)) return [];
    const was = JSON.stringify(old[keyword]);
    if (!(keyword in now)) return [`${path} no longer has ${keyword} ${was}`];
    if (isDeepStrictEqual(old[keyword], now[keyword])) return [];
    const is = JSON.stringify(now[keyword]);
    return [
      `${path} changed ${keyword} from ${was} to ${is} (the gate cannot tell that it only narrows)`,
    ];
  });
}

/** A `$ref` appearing where there was none may replace every keyword beside it (draft 7). */
function refProblems(old: Schema, now: Schema, path: string): string[] {
  return "$ref" in now && !("$ref" in old) ? [`${path} became a $ref the gate cannot follow`] : [];
}

/** How a comparison reads: `replay` asks the other way round (see `narrowings`). */
interface Mode {
  /** A property `before` has as optional and `after` lacks is no problem (an old fact lacks it). */
  optionalMayBeMissing: boolean;
}

const FORWARD: Mode = { optionalMayBeMissing: false };

function objectProblems(before: Schema, after: Schema, path: string, mode: Mode): string[] {
  const was = (before.properties ?? {}) as Record<string, Schema>;
  const now = (after.properties ?? {}) as Record<string, Schema>;
  const wasRequired = new Set((before.required ?? []) as string[]);
  const nowRequired = new Set((after.required ?? []) as string[]);
  const problems: string[] = [];
  for (const [name, schema] of Object.entries(was)) {
    const at = `${path}.${name}`;
    if (!(name in now)) {
      if (!(mode.optionalMayBeMissing && !wasRequired.has(name))) {
        problems.push(`${at} was removed or renamed`);
      }
      continue;
    }
    if (wasRequired.has(name) && !nowRequired.has(name)) problems.push(`${at} became optional`);
    if (!wasRequired.has(name) && nowRequired.has(name)) problems.push(`${at} became required`);
    problems.push(...compare(schema, now[name], at, mode));
  }
  for (const name of Object.keys(now)) {
    if (!(name in was) && nowRequired.has(name)) {
      problems.push(`${path}.${name} was added as required (add optional fields only)`);
    }
  }
  return problems;
}

function itemProblems(old: Schema, now: Schema, path: string, mode: Mode): string[] {
  if (Array.isArray(old.items) || Array.isArray(now.items)) {
    return isDeepStrictEqual(old.items, now.items)
      ? []
      : [`${path} changed its tuple items (the gate cannot tell that it only narrows)`];
  }
  return compare((old.items ?? {}) as Schema, (now.items ?? {}) as Schema, `${path}[]`, mode);
}

/** Why `now` may admit a value `old` did not, both of one JSON type (empty when it cannot). */
function variantProblems(old: Schema, now: Schema, path: string, mode: Mode): string[] {
  const problems = [
    ...valueProblems(old, now, path),
    ...formatProblems(old, now, path),
    ...boundProblems(old, now, path),
    ...keptProblems(old, now, path),
    ...refProblems(old, now, path),
  ];
  if (old.type === "object" || "properties" in old || "properties" in now) {
    problems.push(...objectProblems(old, now, path, mode));
  }
  if (old.type === "array" || "items" in old || "items" in now) {
    problems.push(...itemProblems(old, now, path, mode));
  }
  return problems;
}

/**
 * Why a payload that matches `after` may break a subscriber written for `before` (empty when
 * it cannot), each reason led by the JSON path it is about.
 *
 * @example
 * ```ts
 * import { incompatibilities } from "./schema_compat.ts";
 * incompatibilities(
 *   { type: "object", properties: { a: { type: "number", minimum: 0 } }, required: ["a"] },
 *   { type: "object", properties: { a: { type: "number" } }, required: ["a"] },
 * ); // ["data.a no longer has minimum 0"]
 * ```
 */
export function incompatibilities(before: Schema, after: Schema, path = "data"): string[] {
  return compare(before, after, path, FORWARD);
}

/**
 * The paths where `after` admits less than `before` (an enum value dropped, a bound tightened, a
 * format added), each with why that breaks too: the stream keeps facts for a year and subscribers
 * validate what they read with today's schema (consumeFacts parks what does not match), so a fact
 * published under `before` must still match `after`. The same question as `incompatibilities`,
 * asked the other way round, except that an optional property `after` adds is no problem.
 *
 * @example
 * ```ts
 * import { narrowings } from "./schema_compat.ts";
 * narrowings({ enum: ["draft", "published"] }, { enum: ["published"] });
 * // ["data admits less than before (facts already published may not match it)"]
 * ```
 */
export function narrowings(before: Schema, after: Schema, path = "data"): string[] {
  const problems = compare(after, before, path, { optionalMayBeMissing: true });
  const paths = new Set(problems.map((problem) => problem.split(" ")[0]));
  return [...paths].map((at) =>
    `${at} admits less than before (facts already published may not match it)`
  );
}

/**
 * Every way `after` breaks a subscriber of `before`: what it admits beyond it
 * (`incompatibilities`), then what it no longer admits (`narrowings`, at paths not named yet).
 */
export function breakingChanges(before: Schema, after: Schema, path = "data"): string[] {
  const widened = incompatibilities(before, after, path);
  const named = new Set(widened.map((problem) => problem.split(" ")[0]));
  const narrowed = narrowings(before, after, path).filter((p) => !named.has(p.split(" ")[0]));
  return [...widened, ...narrowed];
}

function compare(before: Schema, after: Schema, path: string, mode: Mode): string[] {
  const was = variants(before);
  const now = variants(after);
  const [wasTypes, nowTypes] = [typesOf(was), typesOf(now)];
  if (wasTypes.join() !== nowTypes.join()) return [typeChange(wasTypes, nowTypes, path)];
  // Every alternative now must fit within one that was there (the closest one explains why not).
  return now.flatMap((variant) =>
    was.filter((old) => typeOf(old) === typeOf(variant))
      .map((old) => variantProblems(old, variant, path, mode))
      .reduce((best, next) => next.length < best.length ? next : best)
  );
}
