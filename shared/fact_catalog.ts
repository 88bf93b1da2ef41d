/**
 * The one registry of facts on the bus. Each key is a fact's CloudEvents `type`,
 * `<service>.<resource type>.<verb>` (a later, incompatible payload gets a new key ending in
 * `.v2`); its entry says what the fact announces, the zod schema of its public `data`, the URL
 * collection of its resource (for the CloudEvents `subject`, from shared/fact_names.ts, which
 * also parses types and names subjects) and an example payload.
 * `recordFact` (shared/facts.ts) refuses a fact that is not here or whose data does not match,
 * `consumeFacts` types and checks `data` with the same schema, and `scripts/asyncapi.ts`
 * documents exactly these types. Publish something new? Add it here first, then run
 * `deno task asyncapi` and `deno task fact-schemas`.
 *
 * @example
 * ```ts
 * import { FACTS, isFactType } from "@shared/fact_catalog.ts";
 * isFactType("catalog.event.updated"); // true
 * isFactType("catalog.event.renamed"); // false
 * FACTS["catalog.event.updated"].data.parse(FACTS["catalog.event.updated"].example);
 * ```
 */
import type { z } from "zod";
import * as data from "./schemas/facts.ts";
import { FACT_COLLECTIONS, type FactResource, factSubject, parseFactType } from "./fact_names.ts";

/** What every fact type of one resource shares. */
interface ResourceFacts<S extends z.ZodObject> {
  /** URL collection: the fact's `subject` is `/v1/<collection>/<id>`. */
  collection: string;
  data: S;
  /** A payload that matches `data` (shown in the AsyncAPI document). */
  example: z.input<S>;
}

/** One registry entry. */
export interface FactEntry<S extends z.ZodObject = z.ZodObject> extends ResourceFacts<S> {
  description: string;
}

/** The facts of one resource type: its data schema and an example; the collection is its own. */
function resource<S extends z.ZodObject>(
  type: FactResource,
  facts: Omit<ResourceFacts<S>, "collection">,
) {
  const collection = FACT_COLLECTIONS[type];
  return (description: string): FactEntry<S> => ({ ...facts, collection, description });
}

const at = "2030-05-01T09:00:00.000Z";
const user = resource("user", {
  data: data.userData,
  example: {
    id: "4",
    email: "ada@example.com",
    "first-name": "Ada",
    "last-name": "Lovelace",
    "is-admin": false,
    "is-super-admin": false,
    "created-at": at,
    "deleted-at": null,
  },
});
const usersEventsRole = resource("users-events-role", {
  data: data.usersEventsRoleData,
  example: { id: "11", "created-at": at, user: "4", event: "5", role: "organizer" },
});
const event = resource("event", {
  data: data.eventData,
  example: {
    id: "5",
    identifier: "a1b2c3d4",
    name: "FOSSASIA Summit",
    description: null,
    "location-name": "Singapore",
    "starts-at": "2030-06-01T09:00:00.000Z",
    "ends-at": "2030-06-03T18:00:00.000Z",
    timezone: "Asia/Singapore",
    state: "published",
    privacy: "public",
    "can-pay-by-stripe": true,
    "is-stripe-linked": false,
    "payment-currency": "SGD",
    "created-at": at,
    "deleted-at": null,
    "event-topic": "2",
    "event-sub-topic": null,
    owner: "4",
  },
});
const eventTopic = resource("event-topic", {
  data: data.eventTopicData,
  example: {
    id: "2",
    name: "Science & Technology",
    slug: "science-technology",
    "system-image-url": null,
    "created-at": at,
    "deleted-at": null,
  },
});
const eventSubTopic = resource("event-sub-topic", {
  data: data.eventSubTopicData,
  example: {
    id: "6",
    name: "Open Source",
    slug: "open-source",
    "created-at": at,
    "deleted-at": null,
    "event-topic": "2",
  },
});
const ticket = resource("ticket", {
  data: data.ticketData,
  example: {
    id: "9",
    name: "Early bird",
    description: null,
    type: "paid",
    price: 25.5,
    quantity: 100,
    "sales-starts-at": null,
    "sales-ends-at": null,
    "created-at": at,
    "deleted-at": null,
    event: "5",
  },
});
const codeExample = {
  id: "8",
  code: "SUMMER",
  "discount-url": null,
  value: 10,
  type: "percent" as const,
  "is-active": true,
  "tickets-number": 50,
  "min-quantity": 1,
  "max-quantity": 10,
  "valid-from": null,
  "valid-till": null,
  "used-for": "ticket" as const,
  "used-count": 2,
  "created-at": at,
  "deleted-at": null,
  event: "5",
  events: [],
  tickets: ["9"],
  marketer: "4",
};
const discountCode = resource("discount-code", {
  data: data.discountCodeData,
  example: codeExample,
});
const redemption = (state: "reserved" | "confirmed" | "released") =>
  resource("discount-code", {
    data: data.discountCodeRedemptionData,
    example: { ...codeExample, reservation: { "order-id": "order-17", quantity: 2, state } },
  });
const stripeAuthorization = resource("stripe-authorization", {
  data: data.stripeAuthorizationData,
  example: { id: "3", "stripe-publishable-key": "pk_test_51Example", event: "5" },
});

/** Every fact type a service may publish, by CloudEvents `type`. */
export const FACTS = {
  "catalog.user.created": user("A user signed up, or the first admin was created at start-up."),
  "catalog.user.updated": user(
    "A user changed (also the configured admin, set again at start-up). Also: their restore by " +
      "an admin (after a `catalog.user.deleted` without `purged`, `deleted-at` back to null).",
  ),
  "catalog.user.deleted": user(
    "A user was deleted: into the trash (`deleted-at` set; an admin may restore them, announced " +
      "as `catalog.user.updated`), or for good (`purged`, after their roles and the events that " +
      "lose them as owner).",
  ),
  "catalog.user.logged-in": user("A user logged in (a token was issued)."),
  "catalog.users-events-role.created": usersEventsRole(
    "A user was given a role on an event (including the owner of a new event).",
  ),
  "catalog.users-events-role.updated": usersEventsRole("A user's role on an event changed."),
  "catalog.users-events-role.deleted": usersEventsRole(
    "A user's role on an event was revoked (also when the event or the user was purged).",
  ),
  "catalog.event.created": event("An event was created."),
  "catalog.event.updated": event(
    "An event changed. Also: its restore by an admin (after a `catalog.event.deleted` without " +
      "`purged`, `deleted-at` back to null), its Stripe link made or removed " +
      "(`is-stripe-linked`), a topic, sub-topic or owner unlinked from it (deleted, purged or " +
      "moved); an event in the trash can change too, its `deleted-at` still set.",
  ),
  "catalog.event.deleted": event(
    "An event was deleted: into the trash (`deleted-at` set; an admin may restore it, announced " +
      "as `catalog.event.updated`), or for good (`purged`, after its tickets and roles).",
  ),
  "catalog.event-topic.created": eventTopic("An event topic was created."),
  "catalog.event-topic.updated": eventTopic(
    "An event topic changed. Also: its restore by an admin (`deleted-at` back to null), " +
      "announced before the sub-topics trashed with it that come back with it.",
  ),
  "catalog.event-topic.deleted": eventTopic(
    "An event topic was deleted, into the trash (`deleted-at` set) or for good (`purged`): " +
      "after the events unlinked from it (`catalog.event.updated`) and its sub-topics " +
      "(`catalog.event-sub-topic.deleted`).",
  ),
  "catalog.event-sub-topic.created": eventSubTopic("An event sub-topic was created."),
  "catalog.event-sub-topic.updated": eventSubTopic(
    "An event sub-topic changed. Also: its restore by an admin (`deleted-at` back to null), " +
      "on its own or with its topic (after the topic's `catalog.event-topic.updated`).",
  ),
  "catalog.event-sub-topic.deleted": eventSubTopic(
    "An event sub-topic was deleted, into the trash (`deleted-at` set; an admin may restore " +
      "it, announced as `catalog.event-sub-topic.updated`) or for good (`purged`), after the " +
      "events unlinked from it; also with its topic, before the topic's own fact.",
  ),
  "catalog.ticket.created": ticket("A ticket was created."),
  "catalog.ticket.updated": ticket("A ticket changed."),
  "catalog.ticket.deleted": ticket("A ticket was deleted (also when its event was purged)."),
  "discounts.discount-code.created": discountCode("A discount code was created."),
  "discounts.discount-code.updated": discountCode(
    "A discount code changed (also when a deleted event or ticket is detached, or a purged " +
      "marketer unset; a code in the trash changes too, its `deleted-at` set).",
  ),
  "discounts.discount-code.deleted": discountCode(
    "A discount code was deleted (also when its event was deleted; purged with a purged event).",
  ),
  "discounts.discount-code.reserved": redemption("reserved")(
    "Uses of a discount code were reserved for an order.",
  ),
  "discounts.discount-code.confirmed": redemption("confirmed")(
    "An order's reserved uses of a discount code were confirmed.",
  ),
  "discounts.discount-code.released": redemption("released")(
    "An order's reserved uses of a discount code were released.",
  ),
  "payments.stripe-authorization.created": stripeAuthorization(
    "A Stripe account was linked to an event.",
  ),
  "payments.stripe-authorization.updated": stripeAuthorization(
    "An event's Stripe account was re-linked.",
  ),
  "payments.stripe-authorization.deleted": stripeAuthorization(
    "An event's Stripe authorization was removed (by a user, Stripe or the event's deletion).",
  ),
};

/** A registered fact type, e.g. `"catalog.event.updated"`. */
export type FactType = keyof typeof FACTS;

/** The typed public payload of a fact type (what a subscriber reads). */
export type FactData<K extends FactType> = z.output<(typeof FACTS)[K]["data"]>;

/** Whether `type` is registered (own keys only: "constructor" is no fact). */
export function isFactType(type: string): type is FactType {
  return Object.hasOwn(FACTS, type);
}

/** One registered fact, for documents and tests. */
export interface FactKind extends FactEntry {
  type: FactType;
  service: string;
  resource: string;
  verb: string;
  /** NATS subject without the bus prefix. */
  subject: string;
}

/** Every registered fact, in registry order. */
export function factKinds(): FactKind[] {
  return (Object.entries(FACTS) as [FactType, FactEntry][]).map(([type, entry]) => ({
    ...entry,
    ...parseFactType(type)!,
    type,
    subject: factSubject(type),
  }));
}
