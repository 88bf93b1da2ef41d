/**
 * Keeps the fact payloads backward compatible. blueprint/fact-schemas.json holds the JSON
 * Schema of every published fact type's `data` as it was last recorded; a payload may change
 * only in ways a subscriber built on the recorded one survives (README, "Evolution rules"):
 * new optional fields, narrower values (fewer enum values, tighter bounds). Removing or renaming
 * a field, changing its type (nullable included), making an optional field required (or the
 * reverse), adding a required field, or admitting any value the recorded schema did not (an
 * enum value, a dropped format, bound, length or pattern: scripts/schema_compat.ts lists them),
 * or dropping a published type needs a new type (`catalog.event.updated.v2`) instead.
 *
 * Run: `deno task fact-schemas` records the current schemas, refusing incompatible ones;
 * `--check` only compares. `scripts/fact_schemas_test.ts` runs the same check.
 */
import { factKinds } from "@shared/fact_catalog.ts";
import { jsonSchemaOf } from "./asyncapi.ts";
import { incompatibilities } from "./schema_compat.ts";

export const SNAPSHOT = new URL("../blueprint/fact-schemas.json", import.meta.url);

type Schema = Record<string, unknown>;

/** The payload schema of every registered fact type, by type. */
export function currentSchemas(): Record<string, Schema> {
  return Object.fromEntries(factKinds().map((kind) => [kind.type, jsonSchemaOf(kind.data)]));
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
