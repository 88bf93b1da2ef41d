import assert from "node:assert/strict";
import { Parser } from "@asyncapi/parser";
import { facts } from "@shared/subjects.ts";
import { FACT_CATALOG, factJsonSchema, OUTPUT, renderAsyncApi } from "./asyncapi.ts";

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
  const expected = Object.entries(FACT_CATALOG).flatMap(([service, types]) =>
    Object.entries(types).flatMap(([type, verbs]) =>
      verbs.map((verb) => `{prefix}.${facts.subject(service, type, verb)}`)
    )
  );
  assert.deepEqual(addresses.sort(), expected.sort());
  assert.ok(addresses.includes("{prefix}.facts.payments.stripe-authorization.deleted"));
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
