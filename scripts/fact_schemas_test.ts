import assert from "node:assert/strict";
import { z } from "zod";
import { eventData, ticketData } from "@shared/schemas/facts.ts";
import { jsonSchemaOf } from "./asyncapi.ts";
import { factEnvelopeSchema } from "@shared/facts.ts";
import {
  compareWithSnapshot,
  currentSchemas,
  currentSnapshot,
  parseSnapshot,
  readSnapshot,
  renderSnapshot,
  SNAPSHOT,
} from "./fact_schemas.ts";

Deno.test("[fact schemas] the envelope and every payload are backward compatible with the recorded snapshot", async () => {
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
  const snapshot = currentSnapshot();
  const { "catalog.event.updated": updated, ...withoutUpdated } = snapshot.data;
  assert.deepEqual(compareWithSnapshot(snapshot, { ...snapshot, data: withoutUpdated }), [
    "catalog.event.updated is no longer registered (subscribers may still read it)",
  ]);
  const v2 = { "catalog.event.updated.v2": { type: "object", properties: {} } };
  assert.deepEqual(
    compareWithSnapshot(snapshot, { ...snapshot, data: { ...snapshot.data, ...v2 } }),
    [],
  );
  assert.ok(updated);
});

Deno.test("[fact schemas] compareWithSnapshot refuses an incompatible envelope", async () => {
  const envelope = factEnvelopeSchema.omit({ data: true }).extend({
    time: z.string(),
    actorid: z.string(),
  });
  const current = { ...currentSnapshot(), envelope: jsonSchemaOf(envelope) };
  assert.deepEqual(compareWithSnapshot(await readSnapshot(), current), [
    "envelope.time no longer has format date-time",
    "envelope.actorid became required",
  ]);
});

Deno.test("[fact schemas] parseSnapshot reads the format from before the envelope was recorded", () => {
  const flat = JSON.stringify(currentSchemas());
  assert.deepEqual(parseSnapshot(flat), { data: currentSchemas() });
  assert.deepEqual(compareWithSnapshot(parseSnapshot(flat)), []);
  assert.deepEqual(parseSnapshot(renderSnapshot()), currentSnapshot());
});

Deno.test("[fact schemas] compareWithSnapshot refuses a payload schema loosened in shared/schemas/facts.ts", async () => {
  // What a reviewer once got through: an enum made a free string, a minimum dropped.
  const current = currentSnapshot();
  current.data["catalog.event.updated"] = jsonSchemaOf(eventData.extend({ state: z.string() }));
  current.data["catalog.ticket.created"] = jsonSchemaOf(ticketData.extend({ price: z.number() }));
  assert.deepEqual(compareWithSnapshot(await readSnapshot(), current), [
    'catalog.event.updated: data.state may now be any string (was one of ["draft","published"])',
    "catalog.ticket.created: data.price no longer has minimum 0",
  ]);
});

Deno.test("[fact schemas] compareWithSnapshot refuses a payload narrowed: published facts must still match", async () => {
  const current = currentSnapshot();
  current.data["catalog.ticket.created"] = jsonSchemaOf(
    ticketData.extend({ price: z.number().min(1) }),
  );
  assert.deepEqual(compareWithSnapshot(await readSnapshot(), current), [
    "catalog.ticket.created: data.price admits less than before (facts already published may not match it)",
  ]);
});
