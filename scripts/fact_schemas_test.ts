import assert from "node:assert/strict";
import { z } from "zod";
import {
  discountCodeRedemptionData,
  eventData,
  reservationData,
  ticketData,
  userData,
} from "@shared/schemas/facts.ts";
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
import { jsonSchemaOf } from "./asyncapi.ts";

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
  const problems = compareWithSnapshot(await readSnapshot(), current);
  assert.deepEqual(problems.filter((problem) => !problem.includes(" pattern ")), [
    "envelope.time no longer has format date-time",
    "envelope.actorid became required",
  ]);
  assert.ok(problems.some((problem) => problem.startsWith("envelope.time no longer has pattern")));
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
  current.data["catalog.ticket.created"] = jsonSchemaOf(
    ticketData.extend({ price: z.number() }),
  );
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

Deno.test("[fact schemas] a date-time's precision or offset rule changed is refused (the record keeps its pattern)", async () => {
  const snapshot = await readSnapshot();
  for (const time of [z.iso.datetime({ offset: true, precision: 0 }), z.iso.datetime()]) {
    const current = currentSnapshot();
    current.envelope = jsonSchemaOf(factEnvelopeSchema.omit({ data: true }).extend({ time }));
    assert.deepEqual(
      compareWithSnapshot(snapshot, current).filter((p) => p.startsWith("envelope.time")),
      [`envelope.time changed pattern from ${
        JSON.stringify(
          (snapshot.envelope!.properties as Record<string, { pattern: string }>).time.pattern,
        )
      } to ${
        JSON.stringify(
          (current.envelope.properties as Record<string, { pattern: string }>).time.pattern,
        )
      } (the gate cannot tell that it only narrows)`],
    );
  }
});

Deno.test("[fact schemas] a payload or envelope closed to fields added later (z.strictObject) is refused", async () => {
  // zod's output JSON Schema gives every object `additionalProperties: false`, strict or not, and
  // the record drops it: a z.strictObject went through, and subscribers on it would then park
  // every fact of a producer that added an optional field (the evolution rules allow that).
  const current = currentSnapshot();
  current.data["catalog.user.created"] = jsonSchemaOf(userData.strict());
  current.data["discounts.discount-code.reserved"] = jsonSchemaOf(
    discountCodeRedemptionData.extend({ reservation: reservationData.strict() }),
  );
  current.envelope = jsonSchemaOf(factEnvelopeSchema.omit({ data: true }).strict());
  const problems = compareWithSnapshot(await readSnapshot(), current);
  for (
    const path of [
      "envelope",
      "catalog.user.created: data",
      "discounts.discount-code.reserved: data.reservation",
    ]
  ) {
    assert.ok(
      problems.includes(
        `${path} is closed to fields added later (z.strictObject): use z.object, which ignores them`,
      ),
      `${path}: ${problems.join(" | ")}`,
    );
  }
  // A loose object (`additionalProperties: {}`) and a plain one stay open: nothing to say.
  assert.deepEqual(jsonSchemaOf(userData).additionalProperties, undefined);
  assert.deepEqual(compareWithSnapshot(await readSnapshot()), []);
});
