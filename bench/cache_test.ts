import assert from "node:assert/strict";
import { CACHE_PARTS, partsOf } from "./cache.ts";

Deno.test("[bench] cache --only names the parts to run, every part without it", () => {
  assert.deepEqual(partsOf(undefined), [...CACHE_PARTS]);
  assert.deepEqual(partsOf("signed-in"), ["signed-in"]);
  assert.deepEqual(partsOf("staleness, memory"), ["staleness", "memory"]);
  assert.throws(() => partsOf("signed-in,bogus"), /Unknown part bogus: use reads, signed-in/);
});
