import type { JsonBody } from "@testing/json.ts";
import assert from "node:assert/strict";
import { breakingChanges, incompatibilities, narrowings } from "./schema_compat.ts";

type Editable = JsonBody;

const topic: Editable = {
  type: "object",
  properties: {
    id: { type: "string", minLength: 1 },
    name: { type: "string" },
    "deleted-at": { anyOf: [{ type: "string", format: "date-time" }, { type: "null" }] },
    state: { type: "string", enum: ["draft", "published"] },
    tickets: {
      type: "array",
      items: { type: "string", minLength: 1 },
      minItems: 1,
      maxItems: 10,
      uniqueItems: true,
    },
    version: { type: "string", const: "1" },
    price: { type: "number", minimum: 0, exclusiveMaximum: 1000, multipleOf: 0.01 },
    quantity: { type: "integer", minimum: 0, maximum: 9007199254740991 },
    slug: { type: "string", maxLength: 64, pattern: "^[a-z-]+$" },
  },
  required: [
    "id",
    "name",
    "deleted-at",
    "state",
    "tickets",
    "version",
    "price",
    "quantity",
    "slug",
  ],
};

function changed(edit: (schema: Editable) => void): Editable {
  const copy = structuredClone(topic);
  edit(copy);
  return copy;
}

Deno.test("[schema compat] incompatibilities tells breaking changes from safe ones", async (t) => {
  const breaking: [string, Record<string, unknown>, RegExp][] = [
    [
      "a removed field",
      changed((s) => {
        delete (s.properties as Record<string, unknown>).name;
        s.required = s.required.filter((n: string) => n !== "name");
      }),
      /data\.name was removed or renamed/,
    ],
    [
      "a renamed field",
      changed((s) => {
        const { name, ...rest } = s.properties;
        s.properties = { ...rest, title: name } as typeof s.properties;
        s.required = [...s.required.filter((n: string) => n !== "name"), "title"];
      }),
      /data\.name was removed or renamed/,
    ],
    [
      "a changed type",
      changed((s) => {
        s.properties.id = { type: "integer" };
      }),
      /data\.id changed type from string to integer/,
    ],
    [
      "a nullable field made non-null",
      changed((s) => {
        s.properties["deleted-at"] = { type: "string", format: "date-time" } as never;
      }),
      /data\.deleted-at changed type/,
    ],
    [
      "a required field added",
      changed((s) => {
        s.properties = { ...s.properties, note: { type: "string" } } as typeof s.properties;
        s.required = [...s.required, "note"];
      }),
      /data\.note was added as required/,
    ],
    [
      "a required field made optional",
      changed((s) => {
        s.required = s.required.filter((n: string) => n !== "name");
      }),
      /data\.name became optional/,
    ],
    [
      "a new enum value",
      changed((s) => {
        s.properties.state = { type: "string", enum: ["draft", "published", "archived"] };
      }),
      /data\.state may now be \["archived"\]/,
    ],
    [
      "array items of another type",
      changed((s) => {
        s.properties.tickets = { type: "array", items: { type: "integer" } } as never;
      }),
      /data\.tickets\[\] changed type/,
    ],
  ];
  for (const [what, after, expected] of breaking) {
    await t.step(`${what} breaks`, () => {
      const problems = incompatibilities(topic, after);
      assert.ok(problems.some((p) => expected.test(p)), problems.join("; ") || "no problem found");
    });
  }
  await t.step("an optional field made required breaks", () => {
    const optional = changed((s) => {
      s.properties = { ...s.properties, note: { type: "string" } } as typeof s.properties;
    });
    const required = { ...optional, required: [...topic.required, "note"] };
    assert.deepEqual(incompatibilities(optional, required), ["data.note became required"]);
  });
  await t.step("an optional field added passes", () => {
    const after = changed((s) => {
      s.properties = { ...s.properties, note: { type: "string" } } as typeof s.properties;
    });
    after.required = topic.required;
    assert.deepEqual(incompatibilities(topic, after), []);
  });
  await t.step("an enum value fewer passes", () => {
    const after = changed((s) => {
      s.properties.state = { type: "string", enum: ["published"] };
    });
    assert.deepEqual(incompatibilities(topic, after), []);
  });
  await t.step("the same schema passes", () => {
    assert.deepEqual(incompatibilities(topic, structuredClone(topic)), []);
  });
});

/** A copy of `topic` whose property `name` is `schema`. */
function withProperty(name: string, schema: Record<string, unknown>): Editable {
  return changed((s) => {
    s.properties[name] = schema;
  });
}

Deno.test("[schema compat] incompatibilities refuses every loosened constraint", async (t) => {
  const { price, slug, tickets } = topic.properties;
  const breaking: [string, Editable, RegExp][] = [
    [
      "an enum widened to any string",
      withProperty("state", { type: "string" }),
      /^data\.state may now be any string \(was one of \["draft","published"\]\)$/,
    ],
    [
      "a const dropped",
      withProperty("version", { type: "string" }),
      /^data\.version may now be any string \(was "1"\)$/,
    ],
    [
      "a const changed",
      withProperty("version", { type: "string", const: "2" }),
      /^data\.version may now be \["2"\] \(was "1"\)$/,
    ],
    [
      "a dropped format",
      withProperty("deleted-at", { anyOf: [{ type: "string" }, { type: "null" }] }),
      /^data\.deleted-at no longer has format date-time$/,
    ],
    [
      "a changed format",
      withProperty("deleted-at", { anyOf: [{ type: "string", format: "date" }, { type: "null" }] }),
      /^data\.deleted-at changed format from date-time to date$/,
    ],
    [
      "a dropped minimum",
      withProperty("price", { ...price, minimum: undefined }),
      /^data\.price no longer has minimum 0$/,
    ],
    [
      "a lowered minimum",
      withProperty("price", { ...price, minimum: -1 }),
      /^data\.price loosened minimum 0 to minimum -1$/,
    ],
    [
      "an exclusive maximum made inclusive",
      withProperty("price", { ...price, exclusiveMaximum: undefined, maximum: 1000 }),
      /^data\.price loosened exclusiveMaximum 1000 to maximum 1000$/,
    ],
    [
      "a dropped maximum",
      withProperty("quantity", { type: "integer", minimum: 0 }),
      /^data\.quantity no longer has maximum 9007199254740991$/,
    ],
    [
      "a dropped minLength",
      withProperty("id", { type: "string" }),
      /^data\.id no longer has minLength 1$/,
    ],
    [
      "a raised maxLength",
      withProperty("slug", { ...slug, maxLength: 128 }),
      /^data\.slug loosened maxLength 64 to maxLength 128$/,
    ],
    [
      "a dropped pattern",
      withProperty("slug", { ...slug, pattern: undefined }),
      /^data\.slug no longer has pattern "\^\[a-z-\]\+\$"$/,
    ],
    [
      "a changed pattern",
      withProperty("slug", { ...slug, pattern: "^[a-z0-9-]+$" }),
      /^data\.slug changed pattern from .+ to .+ \(the gate cannot tell that it only narrows\)$/,
    ],
    [
      "a dropped minItems",
      withProperty("tickets", { ...tickets, minItems: undefined }),
      /^data\.tickets no longer has minItems 1$/,
    ],
    [
      "a raised maxItems",
      withProperty("tickets", { ...tickets, maxItems: 20 }),
      /^data\.tickets loosened maxItems 10 to maxItems 20$/,
    ],
    [
      "a constraint the gate knows only by name, dropped (uniqueItems)",
      withProperty("tickets", { ...tickets, uniqueItems: undefined }),
      /^data\.tickets no longer has uniqueItems true$/,
    ],
    [
      "a coarser multipleOf",
      withProperty("price", { ...price, multipleOf: 0.5 }),
      /^data\.price changed multipleOf from 0\.01 to 0\.5 \(the gate cannot tell/,
    ],
    [
      "a loosened constraint of array items",
      withProperty("tickets", { ...tickets, items: { type: "string" } }),
      /^data\.tickets\[\] no longer has minLength 1$/,
    ],
    [
      "a field made nullable",
      withProperty("name", { type: ["string", "null"] }),
      /^data\.name changed type from string to null\|string \(it became nullable\)$/,
    ],
    [
      "a type array that gained a type",
      withProperty("id", { type: ["string", "integer"], minLength: 1 }),
      /^data\.id changed type from string to integer\|string \(it may now be integer\)$/,
    ],
    [
      "a oneOf that gained a type",
      withProperty("name", { oneOf: [{ type: "string" }, { type: "integer" }] }),
      /^data\.name changed type from string to integer\|string \(it may now be integer\)$/,
    ],
    [
      "an anyOf that gained a looser alternative of the same type",
      withProperty("deleted-at", {
        anyOf: [{ type: "string", format: "date-time" }, { type: "string" }, { type: "null" }],
      }),
      /^data\.deleted-at no longer has format date-time$/,
    ],
  ];
  for (const [what, after, expected] of breaking) {
    await t.step(`${what} breaks`, () => {
      const problems = incompatibilities(topic, JSON.parse(JSON.stringify(after)));
      assert.ok(problems.some((p) => expected.test(p)), problems.join("; ") || "no problem found");
    });
  }
});

Deno.test("[schema compat] incompatibilities lets narrowed constraints and annotations pass", async (t) => {
  const { price, slug, tickets } = topic.properties;
  const safe: [string, Editable][] = [
    ["tightened bounds", {
      ...withProperty("price", { ...price, minimum: 1, exclusiveMaximum: 500 }),
    }],
    [
      "an inclusive minimum made exclusive",
      withProperty("price", {
        ...price,
        minimum: undefined,
        exclusiveMinimum: 0,
      }),
    ],
    ["a shorter maxLength", withProperty("slug", { ...slug, maxLength: 32 })],
    ["fewer items allowed", withProperty("tickets", { ...tickets, minItems: 2, maxItems: 5 })],
    ["an enum where any string was", withProperty("name", { type: "string", enum: ["a", "b"] })],
    ["an enum narrowed to a const", withProperty("state", { type: "string", const: "draft" })],
    ["a format where there was none", withProperty("name", { type: "string", format: "email" })],
    ["a new constraint (pattern)", withProperty("name", { type: "string", pattern: "^A" })],
    [
      "changed titles and descriptions",
      changed((s) => {
        s.title = "Topic";
        s.properties.id.description = "The id.";
        s.properties["deleted-at"].description = "When it went.";
      }),
    ],
  ];
  for (const [what, after] of safe) {
    await t.step(`${what} passes`, () => {
      assert.deepEqual(incompatibilities(topic, JSON.parse(JSON.stringify(after))), []);
    });
  }
});

Deno.test("[schema compat] narrowings: a year of published facts must still match", async (t) => {
  const { price, slug, tickets } = topic.properties;
  const narrowed: [string, Editable, string][] = [
    ["an enum value dropped", withProperty("state", { type: "string", enum: ["draft"] }), "state"],
    ["a tightened bound", withProperty("price", { ...price, minimum: 1 }), "price"],
    ["a shorter maxLength", withProperty("slug", { ...slug, maxLength: 32 }), "slug"],
    ["fewer items allowed", withProperty("tickets", { ...tickets, maxItems: 5 }), "tickets"],
    ["an enum where any string was", withProperty("name", { type: "string", enum: ["a"] }), "name"],
    [
      "a format where there was none",
      withProperty("name", { type: "string", format: "email" }),
      "name",
    ],
  ];
  for (const [what, after, property] of narrowed) {
    await t.step(`${what} is refused`, () => {
      const schema = JSON.parse(JSON.stringify(after));
      assert.deepEqual(incompatibilities(topic, schema), [], "no widening");
      assert.deepEqual(narrowings(topic, schema), [
        `data.${property} admits less than before (facts already published may not match it)`,
      ]);
      assert.deepEqual(breakingChanges(topic, schema), narrowings(topic, schema));
    });
  }
  await t.step("an optional property added and new descriptions pass both ways", () => {
    const after = changed((schema) => {
      schema.properties.note = { type: "string" };
      schema.properties.id.description = "The id.";
    });
    assert.deepEqual(breakingChanges(topic, after), []);
  });
  await t.step("a path already refused as widened is not named twice", () => {
    const after = withProperty("state", { type: "string", enum: ["draft", "archived"] });
    assert.deepEqual(breakingChanges(topic, JSON.parse(JSON.stringify(after))), [
      'data.state may now be ["archived"] (was one of ["draft","published"])',
    ]);
  });
});

Deno.test("[schema compat] a union of literals admits what the enum of them admits", () => {
  const asEnum = { type: "string", enum: ["draft", "published"] };
  const asUnion = {
    anyOf: [{ type: "string", const: "draft" }, { type: "string", const: "published" }],
  };
  assert.deepEqual(breakingChanges(asEnum, asUnion), []);
  assert.deepEqual(breakingChanges(asUnion, asEnum), []);
  const fewer = { anyOf: [{ type: "string", const: "draft" }] };
  assert.deepEqual(breakingChanges(asUnion, fewer), [
    "data admits less than before (facts already published may not match it)",
  ]);
});

Deno.test("[schema compat] a list of values another alternative admits adds nothing", async (t) => {
  const free = { type: "string", maxLength: 10 };
  await t.step("a literal beside a string that admits it, either way round", () => {
    for (const literal of [{ const: "x" }, { type: "string", const: "x" }, { enum: ["x", "y"] }]) {
      const beside = { anyOf: [free, literal] };
      assert.deepEqual(breakingChanges(free, beside), [], JSON.stringify(literal));
      assert.deepEqual(breakingChanges(beside, free), [], JSON.stringify(literal));
    }
  });
  await t.step("a literal the string does not admit still widens it", () => {
    const dated = { type: "string", format: "date-time" };
    assert.deepEqual(incompatibilities(dated, { anyOf: [dated, { const: "never" }] }), [
      "data no longer has format date-time",
    ]);
    assert.deepEqual(incompatibilities(free, { anyOf: [free, { const: "far too long a text" }] }), [
      "data no longer has maxLength 10",
    ]);
    assert.deepEqual(incompatibilities(free, { anyOf: [free, { const: 42 }] }), [
      "data changed type from string to any|string (it may now be any)",
    ]);
  });
  await t.step("and dropping it narrows", () => {
    const dated = { type: "string", format: "date-time" };
    assert.deepEqual(narrowings({ anyOf: [dated, { const: "never" }] }, dated), [
      "data admits less than before (facts already published may not match it)",
    ]);
  });
});
