import assert from "node:assert/strict";
import { z } from "zod";
import { validateAttributes } from "../jsonapi.ts";
import { UnprocessableError } from "../errors.ts";
import { lenientBoolean, lenientNumber } from "./lenient.ts";

const schema = z.object({
  "count": lenientNumber(z.number().int().min(0)).optional(),
  "price": lenientNumber(z.number().min(0)).optional(),
  "on": lenientBoolean().optional(),
});

function refusal(attributes: Record<string, unknown>): { detail?: string; pointer?: string } {
  try {
    validateAttributes(schema, attributes);
  } catch (error) {
    assert.ok(error instanceof UnprocessableError);
    return { detail: error.message, pointer: error.source?.pointer };
  }
  assert.fail(`accepted ${JSON.stringify(attributes)}`);
}

Deno.test("[shared] lenientNumber takes numbers and numeric strings", async (t) => {
  for (const [input, expected] of [[404, 404], ["404", 404], [" 7 ", 7], ["+3", 3], ["0", 0]]) {
    await t.step(`integer ${JSON.stringify(input)}`, () => {
      assert.deepEqual(validateAttributes(schema, { count: input }), { count: expected });
    });
  }
  for (const [input, expected] of [[4.5, 4.5], ["4.5", 4.5], ["10", 10], [".5", 0.5]]) {
    await t.step(`decimal ${JSON.stringify(input)}`, () => {
      assert.deepEqual(validateAttributes(schema, { price: input }), { price: expected });
    });
  }
});

Deno.test("[shared] lenientNumber refuses what is no integer with a pointed 422", async (t) => {
  const cases: [unknown, string][] = [
    ["4.5", "Cannot save: count must be an integer"],
    [4.5, "Cannot save: count must be an integer"],
    ["abc", "Cannot save: count must be a number"],
    ["", "Cannot save: count must be a number"],
    ["1e3", "Cannot save: count must be a number"],
    [true, "Cannot save: count must be a number"],
    ["-1", "Cannot save: count must be at least 0"],
  ];
  for (const [input, detail] of cases) {
    await t.step(JSON.stringify(input), () => {
      assert.deepEqual(refusal({ count: input }), { detail, pointer: "/data/attributes/count" });
    });
  }
  await t.step("null stays refused", () => {
    assert.equal(refusal({ count: null }).pointer, "/data/attributes/count");
  });
});

Deno.test("[shared] lenientBoolean takes the spellings the original took", async (t) => {
  const cases: [unknown, boolean][] = [
    [true, true],
    [false, false],
    ["true", true],
    ["false", false],
    ["True", true],
    ["False", false],
    ["1", true],
    ["0", false],
    [1, true],
    [0, false],
  ];
  for (const [input, expected] of cases) {
    await t.step(JSON.stringify(input), () => {
      assert.deepEqual(validateAttributes(schema, { on: input }), { on: expected });
    });
  }
  for (const input of ["yes!", "", 2, "2", null]) {
    await t.step(`refuses ${JSON.stringify(input)}`, () => {
      assert.equal(refusal({ on: input }).pointer, "/data/attributes/on");
    });
  }
});
