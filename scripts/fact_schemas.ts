/**
 * Keeps the fact payloads backward compatible. blueprint/fact-schemas.json holds the JSON
 * Schema of every published fact type's `data` as it was last recorded; a payload may change
 * only in ways a subscriber built on the recorded one survives (README, "Evolution rules"):
 * new optional fields, fewer enum values. Removing or renaming a field, changing its type,
 * making an optional field required (or the reverse), adding a required field or an enum value,
 * or dropping a published type needs a new type (`catalog.event.updated.v2`) instead.
 *
 * Run: `deno task fact-schemas` records the current schemas, refusing incompatible ones;
 * `--check` only compares. `scripts/fact_schemas_test.ts` runs the same check.
 */
import { factKinds } from "@shared/fact_catalog.ts";
import { jsonSchemaOf } from "./asyncapi.ts";

export const SNAPSHOT = new URL("../blueprint/fact-schemas.json", import.meta.url);

type Schema = Record<string, unknown>;

/** The payload schema of every registered fact type, by type. */
export function currentSchemas(): Record<string, Schema> {
  return Object.fromEntries(factKinds().map((kind) => [kind.type, jsonSchemaOf(kind.data)]));
}

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
 * import { incompatibilities } from "./fact_schemas.ts";
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

/** Problems of the current registry against a snapshot: incompatible changes, dropped types. */
export function compareWithSnapshot(
  snapshot: Record<string, Schema>,
  current: Record<string, Schema> = currentSchemas(),
): string[] {
  return Object.entries(snapshot).flatMap(([type, before]) => {
    const after = current[type];
    if (!after) return [`${type} is no longer registered (subscribers may still read it)`];
    return incompatibilities(before, after).map((problem) => `${type}: ${problem}`);
  });
}

export async function readSnapshot(): Promise<Record<string, Schema>> {
  return JSON.parse(await Deno.readTextFile(SNAPSHOT));
}

export function renderSnapshot(current: Record<string, Schema> = currentSchemas()): string {
  return `${JSON.stringify(current, null, 2)}\n`;
}

if (import.meta.main) {
  const snapshot = await readSnapshot().catch(() => ({}));
  const problems = compareWithSnapshot(snapshot);
  if (problems.length) {
    console.error(
      `Incompatible fact payload changes (publish a new type such as <type>.v2 instead):\n  ${
        problems.join("\n  ")
      }`,
    );
    Deno.exit(1);
  }
  if (Deno.args.includes("--check")) {
    const current = await Deno.readTextFile(SNAPSHOT).catch(() => "");
    if (current !== renderSnapshot()) {
      console.error("blueprint/fact-schemas.json is out of date: run `deno task fact-schemas`");
      Deno.exit(1);
    }
  } else {
    await Deno.writeTextFile(SNAPSHOT, renderSnapshot());
    console.log(`Wrote ${SNAPSHOT.pathname}`);
  }
}
