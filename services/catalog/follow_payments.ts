/**
 * The catalog follows the payments service's facts to keep each event's read-only
 * `is-stripe-linked` right, even when the catalog was down while the change happened (the
 * durable consumer delivers what it missed). It reads only the public payload: the `event` a
 * Stripe authorization belongs to.
 */
import type { Bus } from "@shared/bus.ts";
import { byType, consumeFacts, type FactConsumer } from "@shared/consumer.ts";
import type { Sql } from "@shared/db.ts";
import type { Fact } from "@shared/facts.ts";
import type { Logger } from "@shared/log.ts";
import { applyStripeLink } from "./store/events.ts";

type StripeFact = Fact<`payments.stripe-authorization.${"created" | "updated" | "deleted"}`>;

function link(sql: Sql, linked: boolean) {
  return (fact: StripeFact) => applyStripeLink(sql, fact.data.event, linked, new Date(fact.time));
}

/** Applies a batch of payments facts (exported for tests). */
export function applyPaymentsFacts(sql: Sql, batch: Fact[]): Promise<void> {
  return byType({
    "payments.stripe-authorization.created": link(sql, true),
    "payments.stripe-authorization.updated": link(sql, true),
    "payments.stripe-authorization.deleted": link(sql, false),
  })(batch);
}

/** Starts the durable consumer of payments facts (its name predates this file's: keep it). */
export function followPaymentsFacts(sql: Sql, bus: Bus, log: Logger): Promise<FactConsumer> {
  return consumeFacts(bus, {
    durable: "catalog-stripe-links",
    subject: "facts.payments.>",
    log,
    handle: (batch) => applyPaymentsFacts(sql, batch),
  });
}
