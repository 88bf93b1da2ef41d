import assert from "node:assert/strict";
import { FACTS } from "./fact_catalog.ts";
import { FACT_COLLECTIONS, FACTS_CHANGING_NO_PUBLIC_REPLY, parseFactType } from "./fact_names.ts";

Deno.test("[facts] the light names agree with the registry", () => {
  for (const type of FACTS_CHANGING_NO_PUBLIC_REPLY) {
    assert.ok(Object.hasOwn(FACTS, type), `${type} is no registered fact`);
  }
  for (const type of Object.keys(FACTS)) {
    const resource = parseFactType(type)?.resource;
    assert.ok(resource && Object.hasOwn(FACT_COLLECTIONS, resource), `${type}: no collection`);
  }
});
