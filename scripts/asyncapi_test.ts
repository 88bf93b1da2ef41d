import assert from "node:assert/strict";
import { Parser } from "@asyncapi/parser";
import { FACT_CATALOG, factKinds, isRegisteredFact } from "@shared/fact_catalog.ts";
import { recordFact } from "@shared/facts.ts";
import { factJsonSchema, OUTPUT, renderAsyncApi } from "./asyncapi.ts";

Deno.test("[asyncapi] blueprint/asyncapi.yaml is what `deno task asyncapi` generates", async () => {
  const committed = await Deno.readTextFile(OUTPUT);
  assert.ok(
    committed === renderAsyncApi(),
    "blueprint/asyncapi.yaml is out of date: run `deno task asyncapi` and commit it",
  );
});

Deno.test("[asyncapi] the AsyncAPI parser accepts the document and reads every subject", async () => {
  const { document, diagnostics } = await new Parser().parse(await Deno.readTextFile(OUTPUT));
  // Spectral severities: 0 error, 1 warning (2 info and 3 hint are advice only).
  const problems = diagnostics.filter((d) => d.severity <= 1);
  assert.deepEqual(problems.map((d) => `${d.path.join(".")}: ${d.message}`), []);
  assert.ok(document, "the parser returned a document");
  const addresses = document.channels().all().map((channel) => channel.address());
  const expected = factKinds().map((kind) => `{prefix}.${kind.subject}`);
  assert.deepEqual(addresses.sort(), expected.sort());
  for (
    const subject of [
      "facts.catalog.user.logged-in",
      "facts.discounts.discount-code.released",
      "facts.payments.stripe-authorization.deleted",
    ]
  ) {
    assert.ok(addresses.includes(`{prefix}.${subject}`), subject);
  }
  // Each message carries its registry description.
  const summaries = document.messages().all().map((message) => message.summary());
  assert.deepEqual(summaries.sort(), factKinds().map((kind) => kind.description).sort());
  assert.equal(document.operations().all().length, expected.length);
  // The YAML says exactly what zod generates.
  const fact = document.components().schemas().all().find((schema) => schema.id() === "Fact");
  assert.ok(fact, "components.schemas.Fact exists");
  const { "x-parser-schema-id": _, ...parsed } = fact.json() as Record<string, unknown>;
  assert.deepEqual(stripParserIds(parsed), factJsonSchema());
});

/** The parser tags every schema with `x-parser-schema-id`; the generated one has none. */
function stripParserIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripParserIds);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).filter(([key]) => key !== "x-parser-schema-id")
      .map(([key, item]) => [key, stripParserIds(item)]),
  );
}

Deno.test("[fact catalog] every registered fact has a description and a unique subject", () => {
  const kinds = factKinds();
  assert.equal(new Set(kinds.map((kind) => kind.subject)).size, kinds.length);
  for (const kind of kinds) {
    assert.match(kind.description, /^[A-Z].{9,}\.$/, kind.subject);
    assert.ok(!kind.description.includes("\n"), `${kind.subject}: one line`);
  }
  assert.deepEqual(Object.keys(FACT_CATALOG).sort(), ["catalog", "discounts", "payments"]);
  assert.equal(isRegisteredFact("catalog", "user", "logged-in"), true);
  assert.equal(isRegisteredFact("catalog", "user", "constructor"), false);
  assert.equal(isRegisteredFact("catalog", "toString", "created"), false);
});

Deno.test("[fact catalog] recordFact refuses a fact missing from the registry", async () => {
  let inserts = 0;
  // Refused before any SQL: a stand-in transaction counts what would have been written.
  const tx = () => {
    inserts++;
    return Promise.resolve([]);
  };
  const fact = {
    actor: null,
    resource: { type: "event", id: "1" },
    data: null,
  };
  for (
    const [service, type, verb] of [
      ["catalog", "event", "renamed"],
      ["catalog", "speaker", "created"],
      ["billing", "event", "created"],
    ]
  ) {
    await assert.rejects(
      recordFact(tx, { ...fact, service, type, verb }),
      new Error(
        `Cannot record fact: facts.${service}.${type}.${verb} is not in shared/fact_catalog.ts`,
      ),
    );
  }
  assert.equal(inserts, 0);
  // A registered one goes on to the outbox insert.
  const recorded = await recordFact(Object.assign(tx, { json: (v: unknown) => v }), {
    ...fact,
    service: "catalog",
    type: "event",
    verb: "updated",
  });
  assert.equal(recorded.subject, "facts.catalog.event.updated");
  assert.equal(inserts, 1);
});
