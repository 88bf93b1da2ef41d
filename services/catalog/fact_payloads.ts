/**
 * The catalog's rows as the public payloads of its facts: each resource as the HTTP API shows
 * it (its definition in resources.ts), flattened (shared/fact_data.ts). The one place a catalog
 * row becomes fact data; the registry's schema (shared/fact_catalog.ts) checks the result.
 */
import { changedNames, resourceData } from "@shared/fact_data.ts";
import type { FactType } from "@shared/fact_catalog.ts";
import type { FactActor, NewFact } from "@shared/facts.ts";
import type { ResourceDef } from "@shared/jsonapi.ts";
import {
  eventDef,
  eventSubTopicDef,
  eventTopicDef,
  ticketDef,
  userDef,
  usersEventsRoleDef,
} from "./resources.ts";
import type { Row } from "./store/common.ts";

const defs: Record<string, ResourceDef<Row>> = {
  "user": userDef,
  "users-events-role": usersEventsRoleDef,
  "event": eventDef,
  "event-topic": eventTopicDef,
  "event-sub-topic": eventSubTopicDef,
  "ticket": ticketDef,
};

/** The public payload of a catalog resource of `type`. */
export function catalogFactData(type: string, row: Row): Record<string, unknown> {
  const def = Object.hasOwn(defs, type) ? defs[type] : undefined;
  if (!def) throw new Error(`Cannot describe a catalog fact: no resource type ${type}`);
  return resourceData(def, row);
}

/** The fact `catalog.<type>.<verb>` about `row` (the registry refuses unknown pairs). */
export function catalogFact(actor: FactActor, type: string, verb: string, row: Row): NewFact {
  return {
    type: `catalog.${type}.${verb}` as FactType,
    actor,
    data: catalogFactData(type, row),
  };
}

/**
 * The names of a `type` resource's public payload whose values differ between `before` and
 * `after` (rows of the same resource), in the payload's order: an update fact's `changed`.
 */
export function changedAttributes(type: string, before: Row, after: Row): string[] {
  return changedNames(catalogFactData(type, before), catalogFactData(type, after));
}
