import assert from "node:assert/strict";
import { factKey } from "./activities.ts";

Deno.test("[audit] factKey keeps a UUID and keys any other fact id by its name-based UUID", () => {
  const uuid = "5b0f1b7c-0d4c-4c5e-9f1e-0f1b7c0d4c5e";
  assert.equal(factKey(uuid), uuid);
  // Python's uuid.uuid5(uuid.NAMESPACE_URL, "www.example.com"), the same algorithm elsewhere.
  assert.equal(factKey("www.example.com"), "b63cdfa4-3df9-568e-97ae-006c5b8fd652");
  assert.equal(factKey("evt-1"), factKey("evt-1"));
  assert.notEqual(factKey("evt-1"), factKey("evt-2"));
  // Ids that are not well-formed Unicode stay apart: as UTF-8 each lone surrogate is U+FFFD.
  const keys = ["evt-\uD800", "evt-\uDC00", "evt-\uFFFD"].map(factKey);
  assert.equal(new Set(keys).size, 3);
  assert.equal(factKey("evt-\uD800"), keys[0]);
  // A form Postgres would read as a UUID, but not ours: keyed by name too, never refused.
  assert.match(factKey("{5b0f1b7c-0d4c-4c5e-9f1e-0f1b7c0d4c5e}"), /^[0-9a-f-]{36}$/);
});
