import assert from "node:assert/strict";
import { generateBlueprint } from "./blueprint.ts";
import {
  examplesOf,
  parseBlueprint,
  renderBlueprint,
  section,
  transactionName,
} from "./blueprint_apib.ts";
import { schemaForBody } from "./blueprint_schema.ts";
import { CHALLENGE } from "../gateway/middleware/auth.ts";
import { errorDocumentOf } from "@shared/errors.ts";
import {
  BLUEPRINT_FILES,
  DOCUMENTATION_ONLY,
  generatedExamples,
  KINDS,
} from "../hooks/error_examples.ts";

const root = new URL("../", import.meta.url);
const read = (file: string) => Deno.readTextFileSync(new URL(file, root));

Deno.test("[blueprint] the committed blueprints are what deno task blueprint writes", async (t) => {
  for (const file of BLUEPRINT_FILES) {
    await t.step(file, () => {
      const text = read(file);
      // Compared line by line count first: a whole-file diff of 20,000 lines helps nobody.
      const expected = generateBlueprint(file, text);
      assert.ok(expected === text, `${file} is stale: run deno task blueprint and commit it`);
    });
  }
});

Deno.test("[blueprint] reading and writing a blueprint keeps it", () => {
  for (const file of BLUEPRINT_FILES) {
    const text = read(file);
    assert.equal(renderBlueprint(parseBlueprint(text)), text, file);
  }
});

Deno.test("[blueprint] schemas state types, not the example's values", () => {
  const schema = schemaForBody({
    data: {
      type: "ticket",
      id: "1",
      attributes: { "name": "Standard", "price": 25, "description": null },
    },
  }) as { properties: { data: { properties: Record<string, Record<string, unknown>> } } };
  const data = schema.properties.data.properties;
  const attributes = data.attributes as {
    required: string[];
    properties: Record<string, unknown>;
    additionalProperties?: unknown;
  };
  assert.deepEqual(attributes.properties.price, { type: "number" });
  assert.deepEqual(attributes.properties.description, { type: ["string", "null"] });
  assert.deepEqual(attributes.properties.name, { type: "string" });
  assert.deepEqual(attributes.required, ["name", "price", "description"]);
  assert.equal(attributes.additionalProperties, undefined);
  assert.deepEqual(data.id, { type: "string" });
  assert.throws(
    () => schemaForBody({ data: { type: "ticket", id: "1", attributes: { colour: "red" } } }),
    /ticket has no attribute colour/,
  );
});

Deno.test("[blueprint] every response of every action has a schema and no single-value enum on values", () => {
  for (const file of BLUEPRINT_FILES) {
    for (const chunk of parseBlueprint(read(file))) {
      if (!("action" in chunk)) continue;
      for (const payload of chunk.action.payloads) {
        if (payload.kind !== "Response" || !section(payload, "Body")) continue;
        const schema = section(payload, "Schema");
        const label: string = `${file} ${chunk.action.name} ${payload.status}`;
        assert.ok(schema, `${label} has no Schema`);
        // `enum` appears only for a resource's type and the attributes' value sets.
        for (const match of schema.content.join("\n").matchAll(/"const"|"maxItems"/g)) {
          assert.fail(`${label} pins a value: ${match[0]}`);
        }
      }
    }
  }
});

Deno.test("[blueprint] generated error examples are named as Dredd names them", () => {
  const text = read("blueprint/audit.apib");
  const examples = generatedExamples(text);
  assert.ok(examples.length > 0);
  for (const example of examples) {
    assert.match(example.name, / > Example \d+$/);
    assert.ok(KINDS[example.kind]);
  }
  const names = new Set(examples.map((e) => e.name));
  assert.equal(names.size, examples.length);
});

Deno.test("[blueprint] every documentation-only name is a transaction of a blueprint", () => {
  const names = new Set<string>();
  for (const file of BLUEPRINT_FILES) {
    for (const chunk of parseBlueprint(read(file))) {
      if (!("action" in chunk)) continue;
      const examples = examplesOf(chunk.action);
      examples.forEach((_, i) => names.add(transactionName(chunk.action, i, examples.length)));
    }
  }
  for (const name of Object.keys(DOCUMENTATION_ONLY)) {
    assert.ok(names.has(name), `DOCUMENTATION_ONLY names "${name}", which no blueprint has`);
  }
});

Deno.test("[blueprint] a route that only refuses gets its 401 without a token, a refused variant none", () => {
  const refusal = (heading: string) =>
    `${heading}

+ Request (application/vnd.api+json)

    + Headers

            Authorization: JWT <token>

+ Response 403 (application/vnd.api+json)

    + Body

            {"errors":[{"status":"403","title":"Access forbidden"}]}
`;
  const text = `FORMAT: 1A

# Group Things

## Thing [/v1/things/{id}]

### Get a thing [GET]

+ Request (application/vnd.api+json)

    + Headers

            Authorization: JWT <token>

+ Response 200 (application/vnd.api+json)

    + Body

            {"data":{"type":"thing","id":"1"}}

${refusal("### Get a hidden thing [GET /v1/things/2]")}
## Owner relationship of a thing [/v1/things/{id}/relationships/owner]

${refusal("### Set the owner [PATCH]")}`;
  const kinds = new Map(
    generatedExamples(generateBlueprint("things.apib", text)).map((e) => [e.name, e.kind]),
  );
  assert.equal(
    kinds.get("Things > Owner relationship of a thing > Set the owner > Example 2"),
    "anonymous",
  );
  assert.ok(![...kinds.keys()].some((name) => name.includes("hidden")), "a variant gets none");
  assert.ok([...kinds.keys()].some((name) => name.startsWith("Things > Thing > Get a thing")));
});

Deno.test("[blueprint] every 401 response documents the challenge the gateway sends", () => {
  let checked = 0;
  for (const file of BLUEPRINT_FILES) {
    for (const chunk of parseBlueprint(read(file))) {
      if (!("action" in chunk)) continue;
      for (const payload of chunk.action.payloads) {
        if (payload.kind !== "Response" || payload.status !== 401) continue;
        const headers = section(payload, "Headers")?.content ?? [];
        const label = `${file} ${chunk.action.name}`;
        assert.ok(headers.includes(`WWW-Authenticate: ${CHALLENGE}`), `${label}: no challenge`);
        checked++;
      }
    }
  }
  assert.ok(checked > 0);
});

Deno.test("[blueprint] an error example that names a header says JSON:API 1.1, every other 1.0", () => {
  const wrong: string[] = [];
  let checked = 0;
  for (const file of BLUEPRINT_FILES) {
    for (const chunk of parseBlueprint(read(file))) {
      if (!("action" in chunk)) continue;
      for (const payload of chunk.action.payloads) {
        if (payload.kind !== "Response") continue;
        const text = section(payload, "Body")?.content.join("\n");
        let body;
        try {
          body = text && JSON.parse(text);
        } catch {
          continue;
        }
        if (!Array.isArray(body?.errors)) continue;
        checked++;
        const expected = errorDocumentOf(body.errors).jsonapi.version;
        if (body.jsonapi?.version !== expected) {
          wrong.push(`${file} ${chunk.action.name} ${payload.status}: ${body.errors[0]?.detail}`);
        }
      }
    }
  }
  assert.ok(checked > 0);
  assert.deepEqual(wrong, []);
});
