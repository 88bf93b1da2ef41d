import assert from "node:assert/strict";
import { Parser } from "@asyncapi/parser";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { factKinds, FACTS, type FactType, isFactType } from "@shared/fact_catalog.ts";
import { FACT_COLLECTIONS, parseFactType } from "@shared/fact_names.ts";
import { openDatabase } from "@shared/db.ts";
import { buildFact, installOutbox, parseFact, recordFact } from "@shared/facts.ts";
import { testDatabase } from "@shared/testing.ts";
import {
  dataSchemaName,
  envelopeJsonSchema,
  jsonSchemaOf,
  OUTPUT,
  renderAsyncApi,
} from "./asyncapi.ts";

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
  // The YAML says exactly what zod generates: the envelope and every payload schema.
  const schemas = new Map(
    document.components().schemas().all().map((schema) => [schema.id(), schema.json()]),
  );
  assert.deepEqual(stripParserIds(schemas.get("CloudEvent")), envelopeJsonSchema());
  for (const kind of factKinds()) {
    const name = dataSchemaName(kind);
    assert.deepEqual(stripParserIds(schemas.get(name)), jsonSchemaOf(kind.data), name);
  }
  // Every message has an example.
  for (const message of document.messages().all()) {
    assert.equal(message.examples().all().length, 1, `${message.id()} has an example`);
  }
});

/**
 * `format: date-time` alone (RFC 3339) lets through timestamps our consumers' zod check refuses
 * and parks: a lowercase `t` or `z`, a space for the `T`, a leap second, an offset without its
 * colon or its minutes. A subscriber validating or generating code from the document must accept
 * exactly what `parseFact` does, in the envelope's `time` and in the payload's date-times.
 */
Deno.test("[asyncapi] the document accepts exactly the timestamps our consumers accept", async () => {
  const { document } = await new Parser().parse(await Deno.readTextFile(OUTPUT));
  assert.ok(document, "the AsyncAPI document parses");
  const channel = document.channels().all()
    .find((c) => c.address() === "{prefix}.facts.catalog.event.created");
  assert.ok(channel, "the channel of catalog.event.created");
  // The parser adds `x-parser-*` annotations to every schema: not keywords, so not strict.
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormats as unknown as (ajv: Ajv) => void)(ajv);
  const documented = ajv.compile(channel.messages().all()[0].payload()!.json());
  // A real fact, as a producer builds it (`toISOString`), passes both.
  const real = buildFact({
    type: "catalog.event.created",
    actor: null,
    data: { ...FACTS["catalog.event.created"].example, "deleted-at": "2030-05-01T09:00:00.000Z" },
  });
  assert.ok(documented(real), JSON.stringify(documented.errors));
  assert.ok("fact" in parseFact(real), "the consumer takes the real fact");
  const samples = [
    ["2026-01-01t00:00:00z", false],
    ["2026-01-01 00:00:00Z", false],
    ["2026-12-31T23:59:60Z", false],
    ["2026-01-01T00:00:00+0200", false],
    ["2026-01-01T00:00:00+02", false],
    ["2026-01-01T00:00Z", false],
    ["2026-02-29T00:00:00Z", false],
    ["2026-01-01T00:00:00Z", true],
    ["2026-01-01T00:00:00.123456Z", true],
    ["2026-01-01T00:00:00+02:00", true],
  ] as const;
  for (const [time, accepted] of samples) {
    for (
      const fact of [
        { ...real, time },
        { ...real, data: { ...real.data, "created-at": time } },
        { ...real, data: { ...real.data, "deleted-at": time } },
      ]
    ) {
      const where = `${time} in ${fact.time === time ? "time" : JSON.stringify(fact.data)}`;
      assert.equal("fact" in parseFact(fact), accepted, `the consumer on ${where}`);
      assert.equal(documented(fact), accepted, `the document on ${where}`);
    }
  }
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

Deno.test("[fact catalog] every registered fact has a description, a subject and a valid example", () => {
  const kinds = factKinds();
  assert.equal(new Set(kinds.map((kind) => kind.subject)).size, kinds.length);
  for (const kind of kinds) {
    assert.match(kind.description, /^[A-Z].{9,}\.$/, kind.type);
    assert.ok(!kind.description.includes("\n"), `${kind.type}: one line`);
    assert.ok(parseFactType(kind.type), `${kind.type} is <service>.<type>.<verb>[.vN]`);
    assert.doesNotThrow(() => kind.data.parse(kind.example), `${kind.type}: example`);
    // The entry's collection is its type's: a `ticket.updated` key must hold a ticket's entry.
    assert.equal(
      kind.collection,
      FACT_COLLECTIONS[kind.resource as keyof typeof FACT_COLLECTIONS],
      kind.type,
    );
  }
  // Every resource the gateway's cache tags by collection has facts that keep its entries true.
  assert.deepEqual(
    [...new Set(kinds.map((kind) => kind.resource))].sort(),
    Object.keys(FACT_COLLECTIONS).sort(),
  );
  assert.deepEqual(
    [...new Set(kinds.map((kind) => kind.service))].sort(),
    ["catalog", "discounts", "payments"],
  );
  assert.equal(isFactType("catalog.user.logged-in"), true);
  assert.equal(isFactType("catalog.user.constructor"), false);
  assert.equal(isFactType("toString"), false);
  assert.deepEqual(parseFactType("catalog.event.updated.v2"), {
    service: "catalog",
    resource: "event",
    verb: "updated",
    version: "v2",
  });
});

Deno.test("[fact catalog] no payload schema names a database column or a secret", () => {
  for (const kind of factKinds()) {
    for (const name of propertyNames(jsonSchemaOf(kind.data))) {
      // Column names are snake_case; attribute names are dasherized.
      assert.doesNotMatch(name, /_/, `${kind.type} names a column: ${name}`);
      assert.doesNotMatch(name, /password|secret|access.token|refresh.token|stripe.user/i);
    }
  }
  // The walk sees the names the payloads have: else the loop above checks nothing.
  assert.ok(
    propertyNames(jsonSchemaOf(FACTS["catalog.user.created"].data)).includes("email"),
    "the user payload's schema names its email",
  );
});

Deno.test("[fact catalog] recordFact refuses a fact missing from the registry", async () => {
  // On a real outbox, as the services install it: a refused fact writes no row.
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "catalog", max: 1 });
  try {
    await installOutbox(sql);
    const rows = async () => (await sql`select count(*)::int as n from outbox`)[0].n;
    const data = FACTS["catalog.event.updated"].example;
    for (
      const type of ["catalog.event.renamed", "catalog.speaker.created", "billing.event.created"]
    ) {
      await assert.rejects(
        sql.begin((tx) => recordFact(tx, { type: type as FactType, actor: null, data })),
        new Error(`Cannot record fact: ${type} is not in shared/fact_catalog.ts`),
      );
    }
    assert.equal(await rows(), 0);
    // A registered one is written to the outbox.
    const recorded = await sql.begin((tx) =>
      recordFact(tx, { type: "catalog.event.updated", actor: null, data })
    );
    assert.equal(recorded.subject, `/v1/events/${data.id}`);
    const written = await sql`select id, subject, payload from outbox`;
    assert.deepEqual(
      written.map((row) => [row.id, row.subject, row.payload.type]),
      [[recorded.id, "facts.catalog.event.updated", "catalog.event.updated"]],
    );
  } finally {
    await sql.end();
  }
});

/** Every property name in a JSON Schema, nested ones included. */
function propertyNames(schema: unknown): string[] {
  if (typeof schema !== "object" || schema === null) return [];
  const own = (schema as { properties?: Record<string, unknown> }).properties ?? {};
  return [
    ...Object.keys(own),
    ...Object.values(schema as Record<string, unknown>).flatMap(propertyNames),
  ];
}
