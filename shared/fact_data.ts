/**
 * Turns a row into a fact's public payload the way the HTTP API shows it: the service's JSON:API
 * resource definition serializes it (dasherized attributes, ISO date-times, numbers), then the
 * resource is flattened: `id`, every attribute, and each relationship the row carries as the
 * related id (`"event": "3"`, `"tickets": ["4"]`, `null` when unset). The registry's schema then
 * keeps only what it names (shared/facts.ts), so an attribute added to the HTTP resource does
 * not reach the facts until its schema says so.
 *
 * @example
 * ```ts
 * import { resourceData } from "@shared/fact_data.ts";
 * const def = {
 *   type: "ticket",
 *   collection: "tickets",
 *   attributes: { name: "name" },
 *   relationships: { event: { type: "event", key: "event_id" } },
 * };
 * resourceData(def, { id: 9, name: "Early bird", event_id: 5 });
 * // { id: "9", name: "Early bird", event: "5" }
 * ```
 */
import { type ResourceDef, toResource } from "./jsonapi.ts";

type Linkage = { id: string } | { id: string }[] | null;

/**
 * The names whose values differ between two payloads of one resource (`resourceData` before and
 * after a change), in `after`'s order: an update fact's `changed` (shared/facts.ts keeps the
 * names its schema carries).
 *
 * @example
 * ```ts
 * import { changedNames } from "@shared/fact_data.ts";
 * changedNames({ id: "9", name: "Early", event: "5" }, { id: "9", name: "Late", event: "5" });
 * // ["name"]
 * ```
 */
export function changedNames(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): string[] {
  return Object.keys(after).filter((name) =>
    JSON.stringify(before[name]) !== JSON.stringify(after[name])
  );
}

export function resourceData<Row>(def: ResourceDef<Row>, row: Row): Record<string, unknown> {
  const resource = toResource(def, row);
  const related: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(resource.relationships ?? {})) {
    // Only relationships whose ids the row carries have `data` (to-many ones may not).
    if (!("data" in (value as object))) continue;
    const data = (value as { data: Linkage }).data;
    related[name] = Array.isArray(data) ? data.map((item) => item.id) : data?.id ?? null;
  }
  return { id: resource.id, ...resource.attributes, ...related };
}
