/**
 * The one registry of facts on the bus: every (service, resource type, verb) a service may
 * publish, with a one-line description. `recordFact` (shared/facts.ts) refuses any fact not
 * listed here and `scripts/asyncapi.ts` documents exactly these subjects, so a publisher the test
 * suite exercises cannot send a fact the AsyncAPI document does not name. Publish something new?
 * Add it here first, then run `deno task asyncapi`.
 *
 * @example
 * ```ts
 * import { factKinds, isRegisteredFact } from "@shared/fact_catalog.ts";
 * isRegisteredFact("catalog", "event", "updated"); // true
 * isRegisteredFact("catalog", "event", "renamed"); // false
 * factKinds().length; // one entry per subject
 * ```
 */
import { facts } from "./subjects.ts";

/** service -> resource type -> verb -> what the fact announces (one line). */
export type FactCatalog = Record<string, Record<string, Record<string, string>>>;

export const FACT_CATALOG: FactCatalog = {
  catalog: {
    "user": {
      "created": "A user signed up, or the first admin was created at start-up.",
      "updated": "A user changed (also the configured admin, set again at start-up).",
      "deleted": "A user was deleted.",
      "logged-in": "A user logged in (a token was issued).",
    },
    "users-events-role": {
      "created": "A user was given a role on an event (including the owner of a new event).",
      "updated": "A user's role on an event changed.",
      "deleted": "A user's role on an event was revoked.",
    },
    "event": {
      "created": "An event was created.",
      "updated": "An event changed.",
      "deleted": "An event was deleted.",
    },
    "event-topic": {
      "created": "An event topic was created.",
      "updated": "An event topic changed.",
      "deleted": "An event topic was deleted.",
    },
    "event-sub-topic": {
      "created": "An event sub-topic was created.",
      "updated": "An event sub-topic changed.",
      "deleted": "An event sub-topic was deleted.",
    },
    "ticket": {
      "created": "A ticket was created.",
      "updated": "A ticket changed.",
      "deleted": "A ticket was deleted.",
    },
  },
  discounts: {
    "discount-code": {
      "created": "A discount code was created.",
      "updated": "A discount code changed (also when a deleted event or ticket is detached).",
      "deleted": "A discount code was deleted (also when its event was deleted).",
      "reserved": "Uses of a discount code were reserved for an order.",
      "confirmed": "An order's reserved uses of a discount code were confirmed.",
      "released": "An order's reserved uses of a discount code were released.",
    },
  },
  payments: {
    "stripe-authorization": {
      "created": "A Stripe account was linked to an event.",
      "updated": "An event's Stripe account was re-linked.",
      "deleted":
        "An event's Stripe authorization was removed (by a user, Stripe or the event's deletion).",
    },
  },
};

/** One registered fact, with its subject (without the bus prefix). */
export interface FactKind {
  service: string;
  type: string;
  verb: string;
  subject: string;
  description: string;
}

/** Every registered fact, in registry order. */
export function factKinds(catalog: FactCatalog = FACT_CATALOG): FactKind[] {
  return Object.entries(catalog).flatMap(([service, types]) =>
    Object.entries(types).flatMap(([type, verbs]) =>
      Object.entries(verbs).map(([verb, description]) => ({
        service,
        type,
        verb,
        subject: facts.subject(service, type, verb),
        description,
      }))
    )
  );
}

/** Whether a service may publish this fact (own keys only: "constructor" is no verb). */
export function isRegisteredFact(
  service: string,
  type: string,
  verb: string,
  catalog: FactCatalog = FACT_CATALOG,
): boolean {
  const types = Object.hasOwn(catalog, service) ? catalog[service] : undefined;
  const verbs = types && Object.hasOwn(types, type) ? types[type] : undefined;
  return !!verbs && Object.hasOwn(verbs, verb);
}
