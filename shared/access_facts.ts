/**
 * Keeps an access projection (shared/access_projection.ts) true to the catalog: each service
 * instance hears the facts that can change an answer (plain subscriptions on
 * `<prefix>.facts.<service>.<resource>.>`, no queue group) and the gateways' announcements of
 * what a write they relayed touched, and drops the answers they may change. Whenever the
 * subscription may have missed a message the projection is emptied, and while disconnected it
 * serves and stores nothing (shared/fact_gaps.ts).
 *
 * What changes an answer of `catalog.internal.access` (services/catalog/handlers/internal.ts):
 * the caller's row (admin flags, e-mail, deletion: `catalog.user.*`), the event's row (state,
 * deletion, identifier, `can-pay-by-stripe`: `catalog.event.*`), the caller's roles (which also
 * make a draft visible: `catalog.users-events-role.*`, which drop all of that user's answers,
 * since an answer for an event it could not see is keyed only by what was asked), and the
 * event's `is-stripe-linked`, which the catalog sets a moment after payments' facts and then
 * announces as `catalog.event.updated` (`payments.stripe-authorization.*`: dropped and settled,
 * so an answer read before the catalog applied it does not live long).
 */
import type { Bus } from "./bus.ts";
import type { Logger } from "./log.ts";
import { factSubject } from "./fact_names.ts";
// Hearing the gateways' announcements gives a client its own revocation on its next request.
import { gatewayTouched } from "./subjects.ts";
import { touchedTags } from "./cache_touched.ts";
import { EVERY_TAG } from "./cache_tags.ts";
import type { AccessProjection } from "./access_projection.ts";
import { emptyOnMissedFacts } from "./fact_gaps.ts";

/**
 * The facts that can change an answer, any verb or later version (`.v2`): only these are
 * heard, so a service does not read every code reservation's fact.
 */
export const FACT_SUBJECTS = [
  "catalog.user",
  "catalog.event",
  "catalog.users-events-role",
  "payments.stripe-authorization",
].map((resource) => factSubject(`${resource}.>`));

/** What a message means for the projection: drop or settle tags, or empty it (`clear`). */
export type AccessChange =
  | { drop: string[]; settle?: false }
  | { drop: string[]; settle: true }
  | "clear"
  | undefined;

const text = (value: unknown) =>
  typeof value === "string" || typeof value === "number" ? String(value) : undefined;

/** The change a fact makes to access answers; "clear" when it cannot be read. */
export function factChange(raw: unknown): AccessChange {
  const fact = raw as { type?: unknown; data?: Record<string, unknown> } | null;
  if (typeof fact?.type !== "string") return "clear";
  const [service, resource, verb] = fact.type.split(".");
  const data = fact.data ?? {};
  const need = (...values: unknown[]) => {
    const ids = values.map(text);
    return ids.every((id) => id !== undefined) ? ids as string[] : undefined;
  };
  if (service === "catalog" && resource === "user") {
    if (verb === "logged-in") return undefined;
    const ids = need(data.id);
    return ids ? { drop: [`u:${ids[0]}`] } : "clear";
  }
  if (service === "catalog" && resource === "event") {
    const ids = need(data.id, data.identifier);
    return ids ? { drop: ids.map((id) => `e:${id}`) } : "clear";
  }
  if (service === "catalog" && resource === "users-events-role") {
    const ids = need(data.user);
    return ids ? { drop: [`u:${ids[0]}`] } : "clear";
  }
  if (service === "payments" && resource === "stripe-authorization") {
    const ids = need(data.event);
    return ids ? { drop: [`e:${ids[0]}`], settle: true } : "clear";
  }
  return undefined;
}

/**
 * The change a gateway's write announcement makes: `user:<id>` and `event:<key>` drop those;
 * any role write, or a change touching everything (`EVERY_TAG`), empties the projection (the tags
 * name the grant, not its user), and a Stripe authorization's events are settled.
 */
export function touchedChange(tags: readonly string[]): AccessChange {
  const drop: string[] = [];
  let settle = false;
  for (const tag of tags) {
    if (tag === EVERY_TAG) return "clear";
    if (tag === "users-events-roles" || tag.startsWith("users-events-role:")) return "clear";
    if (tag === "stripe-authorizations") settle = true;
    const [type, id] = tag.split(":", 2);
    if (id && type === "user") drop.push(`u:${id}`);
    if (id && type === "event") drop.push(`e:${id}`);
  }
  if (!drop.length) return undefined;
  return settle ? { drop, settle: true } : { drop };
}

function apply(projection: AccessProjection, change: AccessChange): void {
  if (change === undefined) return;
  if (change === "clear") return projection.clear();
  if (change.settle) projection.settle(change.drop);
  else projection.drop(change.drop);
}

/**
 * Subscribes `projection` to the facts and the gateways' write announcements on `bus`; resolves
 * once the server has the subscriptions, with a function that unsubscribes (and suspends).
 *
 * @example
 * ```ts ignore
 * const stop = await followAccessFacts(bus, projection, log);
 * ```
 */
export async function followAccessFacts(
  bus: Bus,
  projection: AccessProjection,
  log: Logger,
): Promise<() => void> {
  const failed = (error: unknown) => {
    log.warn("access projection emptied: the fact subscription failed", { error });
    projection.clear();
  };
  const factSubscriptions = FACT_SUBJECTS.map((subject) =>
    bus.nc.subscribe(bus.subject(subject), {
      callback: (error, msg) => {
        if (error) return failed(error);
        let change: AccessChange;
        try {
          change = factChange(msg.json());
        } catch {
          change = "clear";
        }
        apply(projection, change);
      },
    })
  );
  const touchedSubscription = bus.nc.subscribe(bus.subject(gatewayTouched), {
    callback: (error, msg) => {
      if (error) return failed(error);
      apply(projection, touchedChange(touchedTags(msg.data)));
    },
  });
  const stopped = new AbortController();
  emptyOnMissedFacts(bus, projection, log, "access projection", stopped.signal).catch(() =>
    projection.suspend(true)
  );
  await bus.nc.flush();
  return () => {
    stopped.abort();
    projection.suspend(true);
    for (const subscription of factSubscriptions) subscription.unsubscribe();
    touchedSubscription.unsubscribe();
  };
}
