/**
 * Whether a change of a JSON Schema can break a reader that relied on the old one: the gate of
 * `deno task fact-schemas` (scripts/fact_schemas.ts) asks it of every recorded fact schema.
 */

type Schema = Record<string, unknown>;

/** The alternatives of a schema, one JSON type each (`anyOf` and type arrays unfolded). */
function variants(schema: Schema): Schema[] {
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Schema[]).flatMap(variants);
  if (Array.isArray(schema.type)) {
    return (schema.type as string[]).map((type) => ({ ...schema, type }));
  }
  return [schema];
}

function typesOf(list: Schema[]): string {
  return [...new Set(list.map((v) => String(v.type ?? "any")))].sort().join("|");
}

function objectProblems(before: Schema, after: Schema, path: string): string[] {
  const was = (before.properties ?? {}) as Record<string, Schema>;
  const now = (after.properties ?? {}) as Record<string, Schema>;
  const wasRequired = new Set((before.required ?? []) as string[]);
  const nowRequired = new Set((after.required ?? []) as string[]);
  const problems: string[] = [];
  for (const [name, schema] of Object.entries(was)) {
    const at = `${path}.${name}`;
    if (!(name in now)) {
      problems.push(`${at} was removed or renamed`);
      continue;
    }
    if (wasRequired.has(name) && !nowRequired.has(name)) problems.push(`${at} became optional`);
    if (!wasRequired.has(name) && nowRequired.has(name)) problems.push(`${at} became required`);
    problems.push(...incompatibilities(schema, now[name], at));
  }
  for (const name of Object.keys(now)) {
    if (!(name in was) && nowRequired.has(name)) {
      problems.push(`${path}.${name} was added as required (add optional fields only)`);
    }
  }
  return problems;
}

/**
 * Why a payload that matches `after` may break a subscriber written for `before` (empty when
 * it cannot).
 *
 * @example
 * ```ts
 * import { incompatibilities } from "./schema_compat.ts";
 * incompatibilities(
 *   { type: "object", properties: { a: { type: "string" } }, required: ["a"] },
 *   { type: "object", properties: { a: { type: "number" } }, required: ["a"] },
 * ); // ["data.a changed type from string to number"]
 * ```
 */
export function incompatibilities(before: Schema, after: Schema, path = "data"): string[] {
  const was = variants(before);
  const now = variants(after);
  if (typesOf(was) !== typesOf(now)) {
    return [`${path} changed type from ${typesOf(was)} to ${typesOf(now)}`];
  }
  return now.flatMap((variant) => {
    const old = was.find((v) => v.type === variant.type)!;
    const problems: string[] = [];
    if (Array.isArray(variant.enum)) {
      const allowed = Array.isArray(old.enum) ? old.enum : undefined;
      const added = variant.enum.filter((value) => allowed && !allowed.includes(value));
      if (!allowed || added.length) {
        problems.push(`${path} may now be ${JSON.stringify(added.length ? added : variant.enum)}`);
      }
    }
    if (variant.type === "object") problems.push(...objectProblems(old, variant, path));
    if (variant.type === "array") {
      problems.push(
        ...incompatibilities(
          (old.items ?? {}) as Schema,
          (variant.items ?? {}) as Schema,
          `${path}[]`,
        ),
      );
    }
    return problems;
  });
}
