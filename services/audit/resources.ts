/**
 * How activities look on the wire and which list parameters they take. The three attributes of
 * the original (`actor`, `time`, `action`) are shown; `id`, `service`, `type` and `verb` can also
 * be filtered and sorted on, so an operator can ask for "every discount change" without matching
 * sentences.
 */
import type { ResourceDef } from "@shared/jsonapi.ts";
import type { QuerySpec } from "@shared/query.ts";
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
  },
  sparse: { activity: ["actor", "time", "action"] },
  // Newest first: what an operator opening the log wants to see.
  defaultSort: [{ column: "occurred_at", desc: true }, { column: "id", desc: true }],
};
