/**
 * Every `created` fact a service publishes names a table whose ids that service keeps past the
 * announced ones after a restore (shared/announced_ids.ts): a resource added later without its
 * entry would hand its ids out again.
 */
import assert from "node:assert/strict";
import { factKinds } from "@shared/fact_catalog.ts";
import { ANNOUNCED_IDS as catalog } from "../services/catalog/service.ts";
import { ANNOUNCED_IDS as discounts } from "../services/discounts/service.ts";
import { ANNOUNCED_IDS as payments } from "../services/payments/service.ts";

Deno.test("[facts] every created fact's ids are kept past after a restore by its service", () => {
  const listed = { catalog, discounts, payments } as Record<string, { created: string }[]>;
  const created = factKinds().filter((kind) => kind.verb === "created");
  assert.ok(created.length > 0);
  for (const kind of created) {
    const own = (listed[kind.service] ?? []).map((entry) => entry.created);
    assert.ok(own.includes(kind.type), `${kind.type} is not in ${kind.service}'s ANNOUNCED_IDS`);
  }
  const every = Object.values(listed).flat().map((entry) => entry.created).toSorted();
  assert.deepEqual(every, created.map((kind) => kind.type).toSorted(), "and nothing else is");
});
