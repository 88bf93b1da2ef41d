/** How discount codes look on the wire, and which query parameters their lists accept. */
import type { ResourceDef } from "@shared/jsonapi.ts";
import type { QuerySpec } from "@shared/query.ts";
import type { CodeRow } from "./store/codes.ts";

const isoOrNull = (value: unknown) => value instanceof Date ? value.toISOString() : value ?? null;

export const codeDef: ResourceDef<CodeRow> = {
  type: "discount-code",
  collection: "discount-codes",
  attributes: {
    "code": "code",
    "discount-url": "discount_url",
    // numeric(12, 2) arrives as an exact string; clients (as with ticket prices) expect a number.
    "value": (row) => row.value === null ? null : Number(row.value),
    "type": "type",
    "is-active": "is_active",
    "tickets-number": "tickets_number",
    "min-quantity": "min_quantity",
    "max-quantity": "max_quantity",
    "valid-from": (row) => isoOrNull(row.valid_from),
    "valid-till": (row) => isoOrNull(row.valid_till),
    "used-for": "used_for",
    "used-count": "used_count",
    "created-at": "created_at",
    "deleted-at": "deleted_at",
  },
  relationships: {
    "event": { type: "event", key: "event_id" },
    "events": { type: "event", many: true, key: "event_ids" },
    "tickets": { type: "ticket", many: true, key: "ticket_ids" },
    "marketer": { type: "user", key: "marketer_id" },
  },
};

/** A relationship of a code to catalog resources, and the column holding its ids. */
export interface CodeRelation {
  type: string;
  many: boolean;
  key: "event_id" | "event_ids" | "ticket_ids" | "marketer_id";
}

/** Related resources of a code, by relationship name: the catalog owns all of them. */
export const codeRelations: Record<string, CodeRelation> = {
  "event": { type: "event", many: false, key: "event_id" },
  "events": { type: "event", many: true, key: "event_ids" },
  "tickets": { type: "ticket", many: true, key: "ticket_ids" },
  "marketer": { type: "user", many: false, key: "marketer_id" },
};

export const codeQuery: QuerySpec = {
  fields: {
    "id": { column: "id", type: "bigint" },
    "code": { column: "code", type: "string", caseless: true },
    "discount-url": { column: "discount_url", type: "string" },
    "value": { column: "value", type: "number" },
    "type": { column: "type", type: "string" },
    "is-active": { column: "is_active", type: "boolean" },
    "tickets-number": { column: "tickets_number", type: "integer" },
    "min-quantity": { column: "min_quantity", type: "integer" },
    "max-quantity": { column: "max_quantity", type: "integer" },
    "valid-from": { column: "valid_from", type: "datetime" },
    "valid-till": { column: "valid_till", type: "datetime" },
    "used-for": { column: "used_for", type: "string" },
    "used-count": { column: "used_count", type: "integer" },
    "created-at": { column: "created_at", type: "datetime" },
    "deleted-at": { column: "deleted_at", type: "datetime" },
  },
  includes: ["event", "events", "tickets", "marketer"],
  sparse: {
    "discount-code": [...Object.keys(codeDef.attributes), ...Object.keys(codeDef.relationships!)],
    // What `include` adds from the catalog: the gateway hands these to catalog.resolve, which
    // checks them as the catalog's own routes do and trims what it returns.
    "event": ["*"],
    "ticket": ["*"],
    "user": ["*"],
  },
  extra: ["get_trashed"],
};
