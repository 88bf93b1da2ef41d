/**
 * Every bus subject in one file (without the bus prefix, which `Bus.subject` adds). The gateway
 * maps routes to these; services serve them.
 *
 * @example
 * ```ts
 * import { catalog } from "@shared/subjects.ts";
 * console.log(catalog.eventTopics.list.subject); // "catalog.event-topics.list"
 * ```
 */
import { ID_PATTERN } from "./schemas/ids.ts";
import { z } from "zod";
import { defineEndpoint, type Endpoint, httpEndpoint } from "./bus.ts";
import { actorSchema } from "./schemas/http.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";

type HttpEndpoint = Endpoint<HttpRequest, HttpReply>;

/** The HTTP-mapped endpoints of one collection, e.g. `/v1/events`. */
export interface ResourceEndpoints {
  list: HttpEndpoint;
  create: HttpEndpoint;
  get: HttpEndpoint;
  update: HttpEndpoint;
  delete: HttpEndpoint;
  /** `GET /v1/<collection>/{id}/<rel>`; the gateway passes `params.rel`. */
  related: HttpEndpoint;
  /** `GET /v1/<collection>/{id}/relationships/<rel>`; the gateway passes `params.rel`. */
  relationship: HttpEndpoint;
}

function resourceEndpoints(service: string, collection: string): ResourceEndpoints {
  const at = (action: string) => httpEndpoint(`${service}.${collection}.${action}`);
  return {
    list: at("list"),
    create: at("create"),
    get: at("get"),
    update: at("update"),
    delete: at("delete"),
    related: at("related"),
    relationship: at("relationship"),
  };
}

/** `GET /v1/<collection>/{id}/<rel>` and `/relationships/<rel>` served by another service. */
export interface ParentEndpoints {
  related: HttpEndpoint;
  relationship: HttpEndpoint;
}

function parentEndpoints(service: string, collection: string): ParentEndpoints {
  return {
    related: httpEndpoint(`${service}.${collection}.related`),
    relationship: httpEndpoint(`${service}.${collection}.relationship`),
  };
}

/** A resource object as JSON:API renders it (kept loose: it crosses the bus already built). */
export const resourceObjectSchema = z.object({
  type: z.string(),
  id: z.string(),
  attributes: z.record(z.string(), z.unknown()).optional(),
  relationships: z.record(z.string(), z.unknown()).optional(),
  links: z.record(z.string(), z.unknown()).optional(),
});

/**
 * Each service answers `<service>.resolve`: the resources of `type` with these ids that `actor`
 * may see (invisible or unknown ones are left out). The gateway uses it to build compound
 * documents whose `include` crosses services.
 */
export function resolveEndpoint(service: string) {
  return defineEndpoint(
    `${service}.resolve`,
    z.object({
      actor: actorSchema.nullable(),
      type: z.string(),
      ids: z.array(z.string()).max(1000),
    }),
    z.object({ data: z.array(resourceObjectSchema) }),
  );
}

const identifierSchema = z.object({ type: z.string(), id: z.string() });

/**
 * Each service that owns relationships of another service's resources (an event's
 * `discount-codes`, its `stripe-authorization`) answers `<service>.resolve-related`: for each
 * parent id, the linkage and the related resources `actor` may see. The gateway uses it for
 * `include` of those relationships.
 */
export function resolveRelatedEndpoint(service: string) {
  return defineEndpoint(
    `${service}.resolve-related`,
    z.object({
      actor: actorSchema.nullable(),
      parentType: z.string(),
      relationship: z.string(),
      parentIds: z.array(z.string()).max(1000),
    }),
    z.object({
      linkage: z.record(
        z.string(),
        z.union([z.array(identifierSchema), identifierSchema, z.null()]),
      ),
      data: z.array(resourceObjectSchema),
    }),
  );
}

/** Which service owns each relationship served outside the parent's own service. */
export const relationOwners: Record<string, string> = {
  "event.discount-codes": "discounts",
  "event.discount-code": "discounts",
  "event.stripe-authorization": "payments",
  "ticket.discount-codes": "discounts",
};

export const catalog = {
  service: "catalog",
  login: httpEndpoint("catalog.auth.login"),
  users: resourceEndpoints("catalog", "users"),
  roles: resourceEndpoints("catalog", "roles"),
  usersEventsRoles: resourceEndpoints("catalog", "users-events-roles"),
  events: resourceEndpoints("catalog", "events"),
  eventTopics: resourceEndpoints("catalog", "event-topics"),
  eventSubTopics: resourceEndpoints("catalog", "event-sub-topics"),
  tickets: resourceEndpoints("catalog", "tickets"),
  resolve: resolveEndpoint("catalog"),
} as const;

/** Discount codes (api-surface §4). Redemption endpoints live in `discountsRedemption`. */
export const discounts = {
  service: "discounts",
  codes: resourceEndpoints("discounts", "discount-codes"),
  /**
   * Writes of `/v1/discount-codes/{id}/relationships/<rel>` (`params.rel`), one endpoint per
   * verb: PATCH replaces the linkage, POST adds members, DELETE removes them.
   */
  codeRelationships: {
    replace: httpEndpoint("discounts.discount-codes.relationship-replace"),
    add: httpEndpoint("discounts.discount-codes.relationship-add"),
    remove: httpEndpoint("discounts.discount-codes.relationship-remove"),
  },
  /** `/v1/events/{id}/discount-codes` and `/v1/events/{id}/discount-code` (`params.rel`). */
  events: parentEndpoints("discounts", "events"),
  /** `/v1/users/{id}/discount-codes`. */
  users: parentEndpoints("discounts", "users"),
  /** `/v1/tickets/{id}/discount-codes`. */
  tickets: parentEndpoints("discounts", "tickets"),
  /** `GET /v1/events/{id}/discount-codes/{code}`: the public checkout lookup. */
  lookup: httpEndpoint("discounts.checkout.lookup"),
  /** `POST /v1/orders/calculate-amount` (plain JSON). */
  calculateAmount: httpEndpoint("discounts.orders.calculate-amount"),
  resolve: resolveEndpoint("discounts"),
  resolveRelated: resolveRelatedEndpoint("discounts"),
} as const;

const codeIdSchema = z.string().regex(ID_PATTERN, "must be a discount code id");
const orderIdSchema = z.string().min(1).max(128);

/** One order's hold on uses of one code. */
export const reservationSchema = z.object({
  orderId: z.string(),
  codeId: z.string(),
  /** Uses held: one use = one discounted ticket. */
  quantity: z.number().int(),
  state: z.enum(["reserved", "confirmed", "released"]),
});
export type Reservation = z.infer<typeof reservationSchema>;

/** Every redemption call answers with the reservation and the code's counters after it. */
export const redemptionAnswerSchema = z.object({
  reservation: reservationSchema,
  /** Held plus confirmed uses (the code's read-only `used-count`). */
  usedCount: z.number().int(),
  /** Uses left under `tickets-number`; null when the code is unlimited. */
  remaining: z.number().int().nullable(),
});
export type RedemptionAnswer = z.infer<typeof redemptionAnswerSchema>;

/** Who the fact of a redemption names as actor (the buyer); omitted or null: the system. */
const redemptionActor = z.object({ id: z.string(), email: z.string() }).nullable().optional();

/**
 * Redemption of discount codes for the order flow (bus only, no HTTP route). Each call is one
 * Postgres transaction in the discounts service; each change publishes a `discount-code` fact
 * (`reserved`, `confirmed`, `released`).
 *
 * - `reserve` takes `quantity` uses of the code for `orderId` with one conditional update, so
 *   the cap holds under any concurrency. Idempotent per (code, order): repeating it changes
 *   nothing (a different quantity is 409); a released reservation may be reserved again.
 *   Only ticket codes are redeemed, for ticket orders: one use is one discounted ticket, and
 *   `quantity` is the number of the order's tickets the code discounts, which must lie within
 *   the code's `min-quantity`..`max-quantity` (the price preview discounts nothing below
 *   min-quantity and at most max-quantity tickets, so a correct order never asks otherwise).
 *   Errors: 404 unknown or deleted code; 422 an event code (`used-for` event discounts no
 *   tickets), `quantity` above max-quantity or below min-quantity, inactive or outside its
 *   validity window (the detail says which); 409 not enough uses left (the detail says how
 *   many). The limits are checked only when uses are taken: repeating a held reservation
 *   stays a no-op even if the code changed since.
 * - `confirm` marks a held reservation as used for good (the order is paid); repeating it is
 *   a no-op; 404 unknown reservation, 409 already released.
 * - `release` gives the uses back (the order expired or was cancelled, confirmed or not);
 *   repeating it is a no-op; 404 unknown reservation.
 *
 * @example
 * ```ts ignore
 * const held = await bus.request(discountsRedemption.reserve, {
 *   codeId: "7", orderId: "order-42", quantity: 2,
 * }); // { reservation: { state: "reserved", ... }, usedCount: 2, remaining: 8 }
 * await bus.request(discountsRedemption.confirm, { codeId: "7", orderId: "order-42" });
 * ```
 */
export const discountsRedemption = {
  reserve: defineEndpoint(
    "discounts.redemptions.reserve",
    z.object({
      codeId: codeIdSchema,
      orderId: orderIdSchema,
      quantity: z.number().int().min(1).max(1_000_000),
      actor: redemptionActor,
    }),
    redemptionAnswerSchema,
  ),
  confirm: defineEndpoint(
    "discounts.redemptions.confirm",
    z.object({ codeId: codeIdSchema, orderId: orderIdSchema, actor: redemptionActor }),
    redemptionAnswerSchema,
  ),
  release: defineEndpoint(
    "discounts.redemptions.release",
    z.object({ codeId: codeIdSchema, orderId: orderIdSchema, actor: redemptionActor }),
    redemptionAnswerSchema,
  ),
};

/** Stripe Connect authorizations (api-surface §5). */
export const payments = {
  service: "payments",
  authorizations: resourceEndpoints("payments", "stripe-authorizations"),
  /** `/v1/events/{id}/stripe-authorization` (`params.rel`). */
  events: parentEndpoints("payments", "events"),
  /** `POST /v1/webhooks/stripe`: forwarded with its raw body and `Stripe-Signature` header. */
  webhook: httpEndpoint("payments.webhooks.stripe"),
  resolve: resolveEndpoint("payments"),
  resolveRelated: resolveRelatedEndpoint("payments"),
} as const;

/** The activity log (api-surface §6). */
export const audit = {
  service: "audit",
  activities: resourceEndpoints("audit", "activities"),
} as const;

/** Which service owns each JSON:API type (for cross-service `include`). */
export const typeOwners: Record<string, string> = {
  "user": "catalog",
  "role": "catalog",
  "users-events-role": "catalog",
  "event": "catalog",
  "event-topic": "catalog",
  "event-sub-topic": "catalog",
  "ticket": "catalog",
  "discount-code": "discounts",
  "stripe-authorization": "payments",
  "activity": "audit",
};

/** The services `/health` expects to find on the bus. */
export const serviceNames = ["catalog", "audit", "payments", "discounts"] as const;

/** Stream and subjects of facts: `<prefix>.facts.<service>.<type>.<verb>`. */
export const facts = {
  stream: (prefix: string) => `${prefix.replaceAll(/[^A-Za-z0-9_-]/g, "_").toUpperCase()}_FACTS`,
  subject: (service: string, type: string, verb: string) => `facts.${service}.${type}.${verb}`,
  all: "facts.>",
  /** Messages on fact subjects that were not valid facts, kept for people to inspect. */
  parkedStream: (prefix: string) =>
    `${prefix.replaceAll(/[^A-Za-z0-9_-]/g, "_").toUpperCase()}_PARKED`,
  parked: "parked.>",
};

/** The caller as services other than the catalog see them. */
export const callerSchema = z.object({
  id: z.string(),
  email: z.string(),
  isAdmin: z.boolean(),
  isSuperAdmin: z.boolean(),
});

/** An event as other services need it for their rules. */
export const eventAccessSchema = z.object({
  id: z.string(),
  identifier: z.string(),
  state: z.enum(["draft", "published"]),
  canPayByStripe: z.boolean(),
  isStripeLinked: z.boolean(),
  /** The caller's roles on this event (empty for strangers and anonymous callers). */
  roles: z.array(z.enum(["owner", "organizer", "coorganizer"])),
});

export const ticketInfoSchema = z.object({
  id: z.string(),
  eventId: z.string(),
  type: z.enum(["free", "paid", "donation"]),
  /** Decimal string with two places, e.g. "12.50": money never travels as a float. */
  price: z.string(),
});

/** Internal capabilities the catalog offers other services (not reachable over HTTP). */
export const catalogInternal = {
  /**
   * Who the actor is and, when `event` (id or identifier) is given, that event and the actor's
   * roles on it. `event` is null when it does not exist, is deleted, or the actor may not see it.
   * Always fresh: a revoked role or admin flag counts on the next call.
   */
  access: defineEndpoint(
    "catalog.internal.access",
    z.object({ actor: actorSchema.nullable(), event: z.string().max(64).optional() }),
    z.object({ caller: callerSchema.nullable(), event: eventAccessSchema.nullable() }),
  ),
  /** Live tickets by id (unknown or deleted ones are left out). */
  tickets: defineEndpoint(
    "catalog.internal.tickets",
    z.object({ ids: z.array(z.string().max(32)).max(1000) }),
    z.object({ tickets: z.array(ticketInfoSchema) }),
  ),
};
