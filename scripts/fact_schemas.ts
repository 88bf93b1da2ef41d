/**
 * Keeps the facts backward compatible. blueprint/fact-schemas.json holds the JSON Schema of the
 * CloudEvents envelope (`envelope`) and of every published fact type's `data` (`data`, by type)
 * as they were last recorded. Each may change only in ways a subscriber built on the recorded
 * one survives (README, "Evolution rules"): new optional fields, narrower values (fewer enum
 * values, tighter bounds). Removing or renaming a field, changing its type (nullable included),
 * making an optional field required (or the reverse), adding a required field, admitting any
 * value the recorded schema did not (an enum value, a dropped format, bound, length or pattern:
 * scripts/schema_compat.ts says which), or dropping a published type needs a new type
 * (`catalog.event.updated.v2`) instead; the envelope, shared by every type, must stay compatible.
 *
 * Run: `deno task fact-schemas` records the current schemas, refusing incompatible ones;
 * `--check` only compares. `scripts/fact_schemas_test.ts` runs the same check.
 */
import { factKinds } from "@shared/fact_catalog.ts";
import { envelopeJsonSchema, jsonSchemaOf } from "./asyncapi.ts";
import { breakingChanges } from "./schema_compat.ts";

export const SNAPSHOT = new URL("../blueprint/fact-schemas.json", import.meta.url);

type Schema = Record<string, unknown>;

/** What blueprint/fact-schemas.json records. */
export interface Snapshot {
  /**
   * The CloudEvents envelope without `data`, as every fact type shares it. Absent in a file
   * written before the envelope was recorded: then there is nothing to compare it with yet.
   */
  envelope?: Schema;
  /** The payload schema of every registered fact type, by type. */
  data: Record<string, Schema>;
}

/** The payload schema of every registered fact type, by type. */
export function currentSchemas(): Record<string, Schema> {
  return Object.fromEntries(
    factKinds().map((kind) => [kind.type, jsonSchemaOf(kind.data)]),
  );
}

/** The envelope and payload schemas as the code defines them now. */
export function currentSnapshot(): Snapshot {
  return { envelope: envelopeJsonSchema(), data: currentSchemas() };
}

/**
 * The paths of `schema` where an object refuses properties it does not name (`z.strictObject`):
 * a subscriber on it would park every fact of a producer that added an optional field, which the
 * evolution rules allow without a new version.
 */
function closedObjects(schema: unknown, path: string): string[] {
  if (Array.isArray(schema)) return schema.flatMap((item) => closedObjects(item, path));
  if (typeof schema !== "object" || schema === null) return [];
  const here = (schema as Schema).additionalProperties === false ? [path] : [];
  const properties = ((schema as Schema).properties ?? {}) as Record<string, unknown>;
  const inside = Object.entries(properties).flatMap(([name, item]) =>
    closedObjects(item, `${path}.${name}`)
  );
  const beside = Object.entries(schema as Schema)
    .filter(([key]) => key !== "properties")
    .flatMap(([key, item]) => closedObjects(item, key === "items" ? `${path}[]` : path));
  return [...here, ...inside, ...beside];
}

function closedProblems(current: Snapshot): string[] {
  const closed = [
    ...closedObjects(current.envelope ?? {}, "envelope"),
    ...Object.entries(current.data).flatMap(([type, schema]) =>
      closedObjects(schema, "data").map((path) => `${type}: ${path}`)
    ),
  ];
  return [...new Set(closed)].map((path) =>
    `${path} is closed to fields added later (z.strictObject): use z.object, which ignores them`
  );
}

/**
 * Problems of the current envelope and registry against a snapshot: incompatible changes
 * (envelope ones led by `envelope.`, payload ones by the fact type), dropped types, objects
 * closed to fields added later.
 */
export function compareWithSnapshot(
  snapshot: Snapshot,
  current: Snapshot = currentSnapshot(),
): string[] {
  const envelope = snapshot.envelope
    ? breakingChanges(snapshot.envelope, current.envelope ?? {}, "envelope")
    : [];
  const data = Object.entries(snapshot.data).flatMap(([type, before]) => {
    const after = current.data[type];
    if (!after) return [`${type} is no longer registered (subscribers may still read it)`];
    return breakingChanges(before, after).map((problem) => `${type}: ${problem}`);
  });
  return [...envelope, ...data, ...closedProblems(current)];
}

/**
 * A snapshot from its JSON; also reads the older format, one flat map of payload schemas by
 * fact type (a fact type always has dots, so it is never `data`).
 */
export function parseSnapshot(text: string): Snapshot {
  const json = JSON.parse(text);
  return "data" in json ? json : { data: json };
}

export async function readSnapshot(): Promise<Snapshot> {
  return parseSnapshot(await Deno.readTextFile(SNAPSHOT));
}

export function renderSnapshot(): string {
  const current = currentSnapshot();
  return `${JSON.stringify({ envelope: current.envelope, data: current.data }, null, 2)}\n`;
}

if (import.meta.main) {
  const snapshot = await readSnapshot().catch((): Snapshot => ({ data: {} }));
  const problems = compareWithSnapshot(snapshot);
  if (problems.length) {
    console.error(
      "Incompatible fact changes (publish a changed payload as a new type such as <type>.v2;",
      "the envelope, shared by every type, must stay compatible):",
    );
    for (const problem of problems) console.error(`  ${problem}`);
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
