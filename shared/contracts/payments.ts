/** The payments service's contract: Stripe Connect authorizations and Stripe's webhook (§5). */
import {
  collection,
  defineContract,
  httpOperation,
  resolveOperation,
  resolveRelatedOperation,
  SIGNED_IN_READS,
  SIGNED_IN_RELATIONS,
  SIGNED_IN_WRITES,
} from "../contract.ts";

const S = "payments";

export const paymentsContract = defineContract({
  service: S,
  description: "Stripe Connect authorizations of events",
  types: ["stripe-authorization"],
  relations: ["event.stripe-authorization"],
  touches: {
    /** The catalog shows an event's link as `is-stripe-linked`, following these facts. */
    "stripe-authorization": (authorization) =>
      typeof authorization.event === "string" ? [`event:${authorization.event}`] : [],
  },
  operations: {
    /** No list: authorizations are reached per event. */
    ...collection(S, "stripe-authorizations", {
      access: { ...SIGNED_IN_READS, ...SIGNED_IN_WRITES },
      related: ["event"],
    }),
    ...collection(S, "events", {
      access: SIGNED_IN_RELATIONS,
      related: ["stripe-authorization"],
    }),
    /** Stripe signs the exact bytes it sends, so the body travels raw with its signature. */
    "webhooks.stripe": httpOperation("payments.webhooks.stripe", "stripe", [
      { method: "POST", path: "/v1/webhooks/stripe" },
    ], { media: "signed-json", rawHeaders: ["stripe-signature"] }),
    resolve: resolveOperation(S),
    "resolve-related": resolveRelatedOperation(S),
  },
});
