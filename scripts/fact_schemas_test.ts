import assert from "node:assert/strict";
import { z } from "zod";
import { eventData, ticketData } from "@shared/schemas/facts.ts";
import { jsonSchemaOf } from "./asyncapi.ts";
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

Deno.test("[fact schemas] compareWithSnapshot refuses a payload schema loosened in shared/schemas/facts.ts", async () => {
  // What a reviewer once got through: an enum made a free string, a minimum dropped.
  const current = {
    ...currentSchemas(),
    "catalog.event.updated": jsonSchemaOf(eventData.extend({ state: z.string() })),
    "catalog.ticket.created": jsonSchemaOf(ticketData.extend({ price: z.number() })),
  };
  assert.deepEqual(compareWithSnapshot(await readSnapshot(), current), [
    'catalog.event.updated: data.state may now be any string (was one of ["draft","published"])',
    "catalog.ticket.created: data.price no longer has minimum 0",
  ]);
});
