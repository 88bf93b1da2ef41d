/**
 * The public payloads of facts: the `data` of each fact type, as clients of the HTTP API know the
 * resource (dasherized attribute names, ids and relationship ids as strings, date-times in ISO
 * 8601). Never a database column name, never a secret. These schemas are the contract with every
 * subscriber: change them only as the README's evolution rules allow (adding optional fields);
 * `scripts/fact_schemas_test.ts` compares them with the committed snapshots.
 *
 * Relationship ids are flat keys named after the relationship (`"event": "3"`,
 * `"tickets": ["4", "5"]`), to-one ones `null` when unset.
 *
 * @example
 * ```ts
 * import { eventTopicData } from "@shared/schemas/facts.ts";
 * eventTopicData.parse({
 *   id: "1", name: "Science", slug: "science", "system-image-url": null,
 *   "created-at": "2030-01-01T00:00:00.000Z", "deleted-at": null,
 * });
 * ```
 */
import { z } from "zod";

const id = z.string().min(1).meta({ description: "The resource's id (as in /v1/<type>s/{id})." });
const ref = (type: string) => z.string().min(1).meta({ description: `Id of the ${type}.` });
const time = z.iso.datetime({ offset: true });
const createdAt = time.meta({ description: "When the resource was created." });
const deletedAt = time.nullable().meta({
  description: "When it was soft-deleted (null while live).",
});

export const userData = z.object({
  id,
  email: z.string(),
  "first-name": z.string().nullable(),
  "last-name": z.string().nullable(),
  "is-admin": z.boolean(),
  "is-super-admin": z.boolean(),
  "created-at": createdAt,
  "deleted-at": deletedAt,
}).meta({ title: "User", description: "A user (the password never travels)." });

export const usersEventsRoleData = z.object({
  id,
  "created-at": createdAt,
  user: ref("user"),
  event: ref("event"),
  role: z.enum(["owner", "organizer", "coorganizer"]).meta({ description: "The role's name." }),
}).meta({ title: "UsersEventsRole", description: "A user's role on an event." });

export const eventData = z.object({
  id,
  identifier: z.string().meta({ description: "8 hex characters, usable wherever the id is." }),
  name: z.string(),
  description: z.string().nullable(),
  "location-name": z.string().nullable(),
  "starts-at": time,
  "ends-at": time,
  timezone: z.string().meta({ description: "IANA timezone name." }),
  state: z.enum(["draft", "published"]),
  privacy: z.enum(["public", "private"]),
  "can-pay-by-stripe": z.boolean(),
  "is-stripe-linked": z.boolean(),
  "payment-currency": z.string().regex(/^[A-Z]{3}$/).nullable().optional().meta({
    description: "ISO 4217 code, upper case; null: none set. Added without a new version: " +
      "facts published before it have no such field.",
  }),
  "created-at": createdAt,
  "deleted-at": deletedAt,
  "event-topic": ref("event topic").nullable(),
  "event-sub-topic": ref("event sub-topic").nullable(),
  owner: ref("owning user").nullable(),
}).meta({ title: "Event", description: "An event." });

export const eventTopicData = z.object({
  id,
  name: z.string(),
  slug: z.string(),
  "system-image-url": z.string().nullable(),
  "created-at": createdAt,
  "deleted-at": deletedAt,
}).meta({ title: "EventTopic", description: "An event topic." });

export const eventSubTopicData = z.object({
  id,
  name: z.string(),
  slug: z.string(),
  "created-at": createdAt,
  "deleted-at": deletedAt,
  "event-topic": ref("event topic"),
}).meta({ title: "EventSubTopic", description: "An event sub-topic." });

export const ticketData = z.object({
  id,
  name: z.string(),
  description: z.string().nullable(),
  type: z.enum(["free", "paid", "donation"]),
  price: z.number().min(0),
  quantity: z.int().min(0),
  "sales-starts-at": time.nullable(),
  "sales-ends-at": time.nullable(),
  "created-at": createdAt,
  "deleted-at": deletedAt,
  event: ref("event"),
}).meta({ title: "Ticket", description: "A ticket of an event." });

export const discountCodeData = z.object({
  id,
  code: z.string(),
  "discount-url": z.string().nullable(),
  value: z.number(),
  type: z.enum(["amount", "percent"]),
  "is-active": z.boolean(),
  "tickets-number": z.int().nullable().meta({ description: "Total uses; null = unlimited." }),
  "min-quantity": z.int(),
  "max-quantity": z.int(),
  "valid-from": time.nullable(),
  "valid-till": time.nullable(),
  "used-for": z.enum(["event", "ticket"]),
  "used-count": z.int().meta({ description: "Uses reserved or confirmed." }),
  "created-at": createdAt,
  "deleted-at": deletedAt,
  event: ref("event (ticket codes)").nullable(),
  events: z.array(ref("event")).meta({ description: "Events an event code is applied to." }),
  tickets: z.array(ref("ticket")).meta({ description: "Tickets a ticket code applies to." }),
  marketer: ref("user who created it").nullable(),
}).meta({ title: "DiscountCode", description: "A discount code." });

export const reservationData = z.object({
  "order-id": z.string(),
  quantity: z.int().min(1).meta({ description: "Uses (one use = one ticket)." }),
  state: z.enum(["reserved", "confirmed", "released"]),
}).meta({ title: "Reservation" });

/** A redemption step: the code after it, and the order's reservation. */
export const discountCodeRedemptionData = discountCodeData.extend({
  reservation: reservationData,
}).meta({
  title: "DiscountCodeRedemption",
  description: "A discount code after a redemption step, with the reservation.",
});

export const stripeAuthorizationData = z.object({
  id,
  "stripe-publishable-key": z.string().meta({
    description: "The connected account's publishable key (public by design; the secret key, " +
      "refresh token and account id never travel).",
  }),
  event: ref("event"),
}).meta({
  title: "StripeAuthorization",
  description: "A Stripe authorization (an event linked to a Stripe account).",
});
