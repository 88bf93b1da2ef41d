import type { JsonBody } from "@testing/json.ts";
import assert from "node:assert/strict";
import { incompatibilities } from "./schema_compat.ts";

type Editable = JsonBody;

const topic: Editable = {
  type: "object",
  properties: {
    id: { type: "string" },
    name: { type: "string" },
    "deleted-at": { anyOf: [{ type: "string", format: "date-time" }, { type: "null" }] },
    state: { type: "string", enum: ["draft", "published"] },
    tickets: { type: "array", items: { type: "string" } },
  },
  required: ["id", "name", "deleted-at", "state", "tickets"],
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
