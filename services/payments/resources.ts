/** How a Stripe authorization looks on the wire: only the publishable key is ever shown. */
import type { ResourceDef } from "@shared/jsonapi.ts";
import type { QuerySpec } from "@shared/query.ts";
import type { AuthorizationRow } from "./store/authorizations.ts";

/** `stripe-auth-code` is write-only and the sealed columns are never mapped. */
export const stripeAuthorizationDef: ResourceDef<AuthorizationRow> = {
  type: "stripe-authorization",
  collection: "stripe-authorizations",
  attributes: {
    "stripe-publishable-key": "stripe_publishable_key",
    // The original soft-deleted authorizations; we delete them for real, so it is always null.
    "deleted-at": () => null,
  },
  relationships: { "event": { type: "event", key: "event_id" } },
};

/** Single-resource routes: `include=event` (resolved by the catalog), sparse fields. */
export const stripeAuthorizationQuery: Pick<QuerySpec, "includes" | "sparse"> = {
  includes: ["event"],
  sparse: {
    // `stripe-auth-code` is write-only: never shown, but the original's schema declared it, so a
    // fieldset may name it (selecting nothing), as it may name `id`.
    "stripe-authorization": ["stripe-publishable-key", "deleted-at", "event", "stripe-auth-code"],
    // What `include=event` adds from the catalog: the gateway hands it to catalog.resolve, which
    // checks it as the catalog's own routes do (as discount codes' `fields[event]`).
    "event": ["*"],
  },
};
