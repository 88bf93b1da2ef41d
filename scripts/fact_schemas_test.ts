import assert from "node:assert/strict";
import {
  compareWithSnapshot,
  currentSchemas,
  readSnapshot,
  renderSnapshot,
  SNAPSHOT,
} from "./fact_schemas.ts";

Deno.test("[fact schemas] every payload is backward compatible with the recorded snapshot", async () => {
  const snapshot = await readSnapshot();
  assert.deepEqual(
    compareWithSnapshot(snapshot),
    [],
    "an incompatible payload change: publish it as a new type (<type>.v2) instead",
  );
  assert.ok(
    (await Deno.readTextFile(SNAPSHOT)) === renderSnapshot(),
    "blueprint/fact-schemas.json is out of date: run `deno task fact-schemas` and commit it",
  );
});

Deno.test("[fact schemas] a dropped type fails; a new versioned type passes", () => {
  const current = currentSchemas();
  const snapshot = { ...current };
  const { "catalog.event.updated": updated, ...withoutUpdated } = current;
  assert.deepEqual(compareWithSnapshot(snapshot, withoutUpdated), [
    "catalog.event.updated is no longer registered (subscribers may still read it)",
  ]);
  const v2 = { ...current, "catalog.event.updated.v2": { type: "object", properties: {} } };
  assert.deepEqual(compareWithSnapshot(snapshot, v2), []);
  assert.ok(updated);
});
