/**
 * Each service's resource definitions show exactly the attributes the wire shape declares
 * (shared/contracts/attributes.ts), so the blueprint's schemas and the replies cannot drift.
 */
import assert from "node:assert/strict";
import type { ResourceDef } from "@shared/jsonapi.ts";
import { ATTRIBUTES } from "@shared/contracts/attributes.ts";
import { contracts, typeOwners } from "@shared/contracts/mod.ts";
import * as audit from "../../services/audit/resources.ts";
import * as catalog from "../../services/catalog/resources.ts";
import * as discounts from "../../services/discounts/resources.ts";
import * as payments from "../../services/payments/resources.ts";

function definitions(module: Record<string, unknown>): ResourceDef<never>[] {
  return Object.values(module).filter((value): value is ResourceDef<never> =>
    !!value && typeof value === "object" && "type" in value && "attributes" in value
  );
}

const all = [audit, catalog, discounts, payments].flatMap(definitions);

Deno.test("every resource type has its wire shape declared, and only owned types do", () => {
  assert.deepEqual(Object.keys(ATTRIBUTES).sort(), Object.keys(typeOwners).sort());
  for (const type of Object.keys(typeOwners)) {
    assert.ok(all.some((def) => def.type === type), `no resource definition renders ${type}`);
  }
});

Deno.test("each resource definition maps the declared attributes (a public view a subset)", () => {
  for (const def of all) {
    const declared = Object.keys(ATTRIBUTES[def.type] ?? {}).sort();
    const mapped = Object.keys(def.attributes).sort();
    const unknown = mapped.filter((name) => !declared.includes(name));
    assert.deepEqual(unknown, [], `${def.type} renders attributes the wire shape lacks`);
  }
  for (const type of Object.keys(ATTRIBUTES)) {
    const widest = Math.max(
      ...all.filter((d) => d.type === type).map((d) => Object.keys(d.attributes).length),
    );
    assert.equal(widest, Object.keys(ATTRIBUTES[type]).length, `${type}: a full view is missing`);
  }
});

Deno.test("every relationship a resource renders has its related and relationship routes", () => {
  // api-surface §1: every relationship's links resolve. A route missing from every contract left
  // a new service's links answering 404 "no such route" (a shape review, 2026-12-05).
  const routes = new Set(
    contracts.flatMap((contract) =>
      Object.values(contract.operations).flatMap((operation) =>
        operation.routes.filter((route) => route.method === "GET").map((route) => route.path)
      )
    ),
  );
  const missing: string[] = [];
  let checked = 0;
  for (const def of all) {
    for (const [name, relationship] of Object.entries(def.relationships ?? {})) {
      if (relationship.placeholder) continue;
      for (
        const path of [
          `/v1/${def.collection}/:id/${name}`,
          `/v1/${def.collection}/:id/relationships/${name}`,
        ]
      ) {
        if (!routes.has(path)) missing.push(path);
        checked++;
      }
    }
  }
  assert.deepEqual([...new Set(missing)], []);
  assert.ok(checked > 20, `only ${checked} links checked`);
});
