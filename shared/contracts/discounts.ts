/** The discounts service's contract: discount codes, the checkout lookup, redemption (§4). */
import {
  busOperation,
  collection,
  defineContract,
  httpOperation,
  type HttpRoute,
  resolveOperation,
  resolveRelatedOperation,
  SIGNED_IN_READS,
  SIGNED_IN_RELATIONS,
  SIGNED_IN_WRITES,
} from "../contract.ts";

const S = "discounts";
const CODE_RELATIONSHIPS = ["event", "events", "tickets", "marketer"] as const;

/**
 * Writes of `/v1/discount-codes/{id}/relationships/<rel>` for every relationship, so the service
 * answers 403 for the ones clients may not write (`event`, `marketer`), as JSON:API asks, rather
 * than the gateway answering 405.
 */
function relationshipWrite(method: HttpRoute["method"], action: string) {
  return httpOperation(
    `discounts.discount-codes.relationship-${action}`,
    "signed-in",
    CODE_RELATIONSHIPS.map((rel) => ({
      method,
      path: `/v1/discount-codes/:id/relationships/${rel}`,
      params: { rel },
    })),
  );
}

/** A found code stops being usable at its `valid-till` (the lookup answers 422 from then on). */
function validTill(body: unknown): number | undefined {
  const attributes = (body as { data?: { attributes?: Record<string, unknown> } })?.data
    ?.attributes;
  const till = attributes?.["valid-till"];
  return typeof till === "string" ? Date.parse(till) : undefined;
}

export const discountsContract = defineContract({
  service: S,
  description: "Discount codes: management, checkout lookup, price preview, redemption",
  types: ["discount-code"],
  relations: [
    "event.discount-codes",
    "event.discount-code",
    "ticket.discount-codes",
    "user.discount-codes",
  ],
  operations: {
    ...collection(S, "discount-codes", {
      access: { list: "admin", ...SIGNED_IN_READS, ...SIGNED_IN_WRITES },
      related: CODE_RELATIONSHIPS,
      // Signed-in, as documented: a code's routes refuse anonymous callers (401). Except that the
      // service answers a code's `event` and `tickets` to anyone when the checkout lookup shows
      // that code (handlers/codes.ts): a buyer's client follows them from the lookup.
    }),
    /** PATCH replaces the linkage, POST adds members, DELETE removes them (`params.rel`). */
    "discount-codes.relationship-replace": relationshipWrite("PATCH", "replace"),
    "discount-codes.relationship-add": relationshipWrite("POST", "add"),
    "discount-codes.relationship-remove": relationshipWrite("DELETE", "remove"),
    ...collection(S, "events", {
      access: SIGNED_IN_RELATIONS,
      related: ["discount-codes", "discount-code"],
    }),
    ...collection(S, "users", { access: SIGNED_IN_RELATIONS, related: ["discount-codes"] }),
    ...collection(S, "tickets", { access: SIGNED_IN_RELATIONS, related: ["discount-codes"] }),
    /** `GET /v1/events/{id}/discount-codes/{code}`: the public checkout lookup. */
    "checkout.lookup": httpOperation("discounts.checkout.lookup", "anyone", [
      { method: "GET", path: "/v1/events/:id/discount-codes/:code" },
    ], { cache: "public", expires: validTill }),
    /**
     * The original takes and answers plain JSON here. A price preview: nothing to keep a key for
     * (stored, each anonymous preview with a key of its own was a row for 24 hours: a review).
     */
    "orders.calculate-amount": httpOperation("discounts.orders.calculate-amount", "anyone", [
      { method: "POST", path: "/v1/orders/calculate-amount" },
    ], { media: "json", changesNothing: true }),
    resolve: resolveOperation(S),
    "resolve-related": resolveRelatedOperation(S),
    /**
     * Redemption for the order flow (bus only). Each call is one Postgres transaction and
     * publishes a `discount-code` fact (`reserved`, `confirmed`, `released`).
     *
     * - `reserve` takes `quantity` uses of the code for `orderId` with one conditional update, so
     *   the cap holds under any concurrency. Idempotent per (code, order): repeating it changes
     *   nothing (a different quantity is 409); a released reservation may be reserved again.
     *   Only ticket codes are redeemed: one use is one discounted ticket, and `quantity` must lie
     *   within the code's `min-quantity`..`max-quantity`. Errors: 404 unknown or deleted code;
     *   422 an event code, a quantity outside the limits, inactive or outside its validity
     *   window (the detail says which); 409 not enough uses left (the detail says how many).
     *   The limits are checked only when uses are taken: repeating a held reservation stays a
     *   no-op even if the code changed since.
     * - `confirm` marks a held reservation as used for good (the order is paid); repeating it
     *   is a no-op; 404 unknown reservation, 409 already released.
     * - `release` gives the uses back (the order expired or was cancelled, confirmed or not);
     *   repeating it is a no-op; 404 unknown reservation.
     */
    "redemptions.reserve": busOperation("discounts.redemptions.reserve", "reserve"),
    "redemptions.confirm": busOperation("discounts.redemptions.confirm", "confirm"),
    "redemptions.release": busOperation("discounts.redemptions.release", "release"),
  },
});
