/** `/v1/stripe-authorizations` and `/v1/webhooks/stripe`: served by the payments service. */
import { Hono } from "hono";
import { payments } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/stripe-authorizations`: no list (authorizations are reached per event). */
export function stripeAuthorizationsRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, payments.authorizations, {
    actions: ["create", "get", "update", "delete"],
    related: ["event"],
  });
}

/**
 * Mounted at `/v1/webhooks`: Stripe signs the exact bytes it sends, so the body travels raw with
 * its `Stripe-Signature` header, and Stripe's plain `application/json` is accepted.
 */
export function webhooksRoutes(forward: Forward): Hono<GatewayEnv> {
  return new Hono<GatewayEnv>().post(
    "/stripe",
    forward(payments.webhook, undefined, {
      contentType: "application/json",
      raw: { headers: ["stripe-signature"] },
    }),
  );
}
