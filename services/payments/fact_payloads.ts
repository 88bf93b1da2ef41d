/**
 * Stripe authorizations as the public payloads of the payments service's facts: the resource as
 * the HTTP API shows it (stripeAuthorizationDef in resources.ts: the publishable key and the
 * event), flattened (shared/fact_data.ts). The sealed columns are never mapped, so they cannot
 * travel; the registry's schema drops anything it does not name.
 */
import { changedNames, resourceData } from "@shared/fact_data.ts";
import type { FactType } from "@shared/fact_catalog.ts";
import type { FactActor, NewFact } from "@shared/facts.ts";
import { stripeAuthorizationDef } from "./resources.ts";
import type { AuthorizationRow } from "./store/authorizations.ts";

/**
 * `payments.stripe-authorization.<verb>`: the catalog flips `is-stripe-linked` from it. An update
 * (a new account linked) names what it changed from `before`: nothing when the account's
 * publishable key stayed the same.
 */
export function authorizationFact(
  actor: FactActor,
  verb: "created" | "updated" | "deleted",
  row: AuthorizationRow,
  before?: AuthorizationRow,
): NewFact {
  const data = resourceData(stripeAuthorizationDef, row);
  return {
    type: `payments.stripe-authorization.${verb}` satisfies FactType,
    actor,
    data,
    ...(before && { changed: changedNames(resourceData(stripeAuthorizationDef, before), data) }),
    // Stripe authorizations are deleted for real: there is no trash to bring one back from.
    purged: verb === "deleted",
  };
}
