/**
 * How activities look on the wire and which list parameters they take. The three attributes of
 * the original (`actor`, `time`, `action`) are shown; `id`, `service`, `type`, `verb` and
 * `resource-id` can also be filtered and sorted on, so an operator can ask for "every discount
 * change" or "everything that happened to event 5" without matching sentences.
 */
import type { ResourceDef } from "@shared/jsonapi.ts";
import type { QuerySpec, SortKey } from "@shared/query.ts";
import type { Row } from "./store/activities.ts";

export const activityDef: ResourceDef<Row> = {
  type: "activity",
  collection: "activities",
  attributes: {
    "actor": "actor",
    "time": "occurred_at",
    "action": "action",
  },
};

export const activityQuery: QuerySpec = {
  fields: {
    // The default sort's tie-breaker, so a client can page by it ("sort=-id", "id gt <last>").
    "id": { column: "id", type: "bigint" },
    "actor": { column: "actor", type: "string" },
    "time": { column: "occurred_at", type: "datetime" },
    "action": { column: "action", type: "string" },
    "service": { column: "service", type: "string" },
    "type": { column: "type", type: "string" },
    "verb": { column: "verb", type: "string" },
    // The changed resource's id: with `type`, one resource's history ("event 5").
    "resource-id": { column: "resource_id", type: "string" },
  },
  sparse: { activity: ["actor", "time", "action"] },
  // Newest first: what an operator opening the log wants to see.
  defaultSort: [{ column: "occurred_at", desc: true }, { column: "id", desc: true }],
};

/**
 * The sort asked for, its ties at one time broken by id in the direction asked of time. One
 * change's facts share its instant and their ids keep the order they were published in, so
 * `sort=-time` lists them as the default order does (newest first, `-id`); the shared rule,
 * ascending id, listed them the other way round. Sorts naming `id`, or no `time`, stay as asked.
 */
export function activitySort(sort: SortKey[]): SortKey[] {
  const time = sort.find((key) => key.column === "occurred_at");
  if (!time || sort.some((key) => key.column === "id")) return sort;
  return [...sort, { column: "id", desc: time.desc }];
}
