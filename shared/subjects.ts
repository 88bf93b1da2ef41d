/**
 * Every bus endpoint by service, as the code that calls or serves them names them, derived from
 * the contracts (shared/contracts/): `catalog.events.list` is the endpoint of the catalog
 * contract's `events.list` operation. Subjects here lack the bus prefix, which `Bus.subject` adds.
 *
 * @example
 * ```ts
 * import { catalog } from "@shared/subjects.ts";
 * console.log(catalog.eventTopics.list.subject); // "catalog.event-topics.list"
 * ```
 */
import type { Endpoint } from "./bus_endpoints.ts";
import { endpointsOf, resolveOperation, resolveRelatedOperation } from "./contract.ts";
import {
  auditContract,
  catalogContract,
  discountsContract,
  paymentsContract,
} from "./contracts/mod.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";

type HttpEndpoint = Endpoint<HttpRequest, HttpReply>;

/** The endpoint every service owning JSON:API types answers (see `resolveOperation`). */
export function resolveEndpoint(service: string) {
  return resolveOperation(service).endpoint;
}

/** The endpoint every service serving foreign relationships answers. */
export function resolveRelatedEndpoint(service: string) {
  return resolveRelatedOperation(service).endpoint;
}

const catalogOps = catalogContract.operations;
export const catalog = {
  service: catalogContract.service,
  login: catalogOps.login.endpoint,
  users: endpointsOf(catalogContract, "users"),
  roles: endpointsOf(catalogContract, "roles"),
  usersEventsRoles: endpointsOf(catalogContract, "users-events-roles"),
  events: endpointsOf(catalogContract, "events"),
  eventTopics: endpointsOf(catalogContract, "event-topics"),
  eventSubTopics: endpointsOf(catalogContract, "event-sub-topics"),
  tickets: endpointsOf(catalogContract, "tickets"),
  resolve: catalogOps.resolve.endpoint,
} as const;

/** Internal capabilities the catalog offers other services (see the catalog contract). */
export const catalogInternal = {
  access: catalogOps["internal.access"].endpoint,
  tickets: catalogOps["internal.tickets"].endpoint,
  liveEvents: catalogOps["internal.live-events"].endpoint,
  list: catalogOps["internal.list"].endpoint,
};

const discountOps = discountsContract.operations;
/** Discount codes (api-surface §4). Redemption endpoints live in `discountsRedemption`. */
export const discounts = {
  service: discountsContract.service,
  codes: endpointsOf(discountsContract, "discount-codes"),
  /** Writes of `/v1/discount-codes/{id}/relationships/<rel>`, one endpoint per verb. */
  codeRelationships: {
    replace: discountOps["discount-codes.relationship-replace"].endpoint,
    add: discountOps["discount-codes.relationship-add"].endpoint,
    remove: discountOps["discount-codes.relationship-remove"].endpoint,
  },
  /** `/v1/events/{id}/discount-codes` and `/v1/events/{id}/discount-code` (`params.rel`). */
  events: endpointsOf(discountsContract, "events"),
  /** `/v1/users/{id}/discount-codes`. */
  users: endpointsOf(discountsContract, "users"),
  /** `/v1/tickets/{id}/discount-codes`. */
  tickets: endpointsOf(discountsContract, "tickets"),
  /** `GET /v1/events/{id}/discount-codes/{code}`: the public checkout lookup. */
  lookup: discountOps["checkout.lookup"].endpoint,
  /** `POST /v1/orders/calculate-amount` (plain JSON). */
  calculateAmount: discountOps["orders.calculate-amount"].endpoint,
  resolve: discountOps.resolve.endpoint,
  resolveRelated: discountOps["resolve-related"].endpoint,
} as const;

/** Redemption of discount codes for the order flow (see the discounts contract). */
export const discountsRedemption = {
  reserve: discountOps["redemptions.reserve"].endpoint,
  confirm: discountOps["redemptions.confirm"].endpoint,
  release: discountOps["redemptions.release"].endpoint,
};

const paymentOps = paymentsContract.operations;
/** Stripe Connect authorizations (api-surface §5). */
export const payments = {
  service: paymentsContract.service,
  authorizations: endpointsOf(paymentsContract, "stripe-authorizations"),
  /** `/v1/events/{id}/stripe-authorization` (`params.rel`). */
  events: endpointsOf(paymentsContract, "events"),
  /** `POST /v1/webhooks/stripe`: forwarded with its raw body and `Stripe-Signature` header. */
  webhook: paymentOps["webhooks.stripe"].endpoint,
  resolve: paymentOps.resolve.endpoint,
  resolveRelated: paymentOps["resolve-related"].endpoint,
} as const;

/** The activity log (api-surface §6). */
export const audit = {
  service: auditContract.service,
  activities: endpointsOf(auditContract, "activities"),
} as const;

/**
 * Where cache tags that may have gone stale are announced (core NATS, outside the fact stream):
 * by gateways for a write they relayed, before they reply to it, and by services whose reads
 * follow another service's facts, once they have applied them (shared/cache_touched.ts). The
 * gateways' caches and the services' access projections drop what is announced.
 */
export const gatewayTouched = "gateway.cache.touched";

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
