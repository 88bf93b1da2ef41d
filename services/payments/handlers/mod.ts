/** The handler of every operation of the payments contract, by contract key. */
import type { Handlers } from "@shared/contract.ts";
import type { paymentsContract } from "@shared/contracts/payments.ts";
import type { PaymentsContext } from "../context.ts";
import {
  createStripeAuthorization,
  deleteStripeAuthorization,
  linkageOfAuthorization,
  relatedOfAuthorization,
  showStripeAuthorization,
  updateStripeAuthorization,
} from "./authorizations.ts";
import { linkageOfEvent, relatedOfEvent } from "./events.ts";
import { resolveAuthorizations } from "./resolve.ts";
import { resolveRelatedAuthorizations } from "./resolve_related.ts";
import { stripeWebhook } from "./webhook.ts";

type Operations = typeof paymentsContract.operations;

/** For `bindOperations(paymentsContract, ...)`: a missing or extra key does not compile. */
export function paymentsHandlers(ctx: PaymentsContext): Handlers<Operations> {
  return {
    "stripe-authorizations.create": (req) => createStripeAuthorization(ctx, req),
    "stripe-authorizations.get": (req) => showStripeAuthorization(ctx, req),
    "stripe-authorizations.update": (req) => updateStripeAuthorization(ctx, req),
    "stripe-authorizations.delete": (req) => deleteStripeAuthorization(ctx, req),
    "stripe-authorizations.related": (req) => relatedOfAuthorization(ctx, req),
    "stripe-authorizations.relationship": (req) => linkageOfAuthorization(ctx, req),
    "events.related": (req) => relatedOfEvent(ctx, req),
    "events.relationship": (req) => linkageOfEvent(ctx, req),
    "webhooks.stripe": (req) => stripeWebhook(ctx, req),
    resolve: (request) => resolveAuthorizations(ctx, request),
    "resolve-related": (request) => resolveRelatedAuthorizations(ctx, request),
  };
}
