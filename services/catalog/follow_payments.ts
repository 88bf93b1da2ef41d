/**
 * The catalog follows the payments service's facts to keep each event's read-only
 * `is-stripe-linked` right, even when the catalog was down while the change happened (the
 * durable consumer delivers what it missed). It reads only the public payload: the `event` a
 * Stripe authorization belongs to.
 */
import type { Bus } from "@shared/bus.ts";
import { byType, consumeFacts, type FactConsumer } from "@shared/consumer.ts";
import { keptPositions } from "@shared/fact_kept_position.ts";
import type { Sql } from "@shared/db.ts";
import { databaseProblem } from "@shared/db_health.ts";
import { changeWithFact, type Fact, factActor } from "@shared/facts.ts";
import { type FactRelay } from "@shared/fact_relay.ts";
import type { Logger } from "@shared/log.ts";
import { catalogFact } from "./fact_payloads.ts";
import { applyStripeLink } from "./store/events.ts";

type StripeFact = Fact<`payments.stripe-authorization.${"created" | "updated" | "deleted"}`>;

/**
 * Applies one payments fact; when the event's is-stripe-linked changes, the catalog announces
 * the event (`event.updated`, by the same actor): the field is in the event's payload, and a
 * subscriber of catalog facts would otherwise never see it change.
 */
function link(sql: Sql, relay: FactRelay, linked: boolean) {
  return async (fact: StripeFact) => {
    await changeWithFact(
      sql,
      relay,
      (tx) => applyStripeLink(tx, fact.data.event, linked, new Date(fact.time)),
      // applyStripeLink returns the event only when its link flipped: that is what changed.
      (event) =>
        event
          ? {
            ...catalogFact(factActor(fact), "event", "updated", event),
            changed: ["is-stripe-linked"],
          }
          : null,
    );
  };
}

/** Applies a batch of payments facts (exported for tests). */
function applyPaymentsFacts(sql: Sql, relay: FactRelay, batch: Fact[]): Promise<void> {
  return byType({
    "payments.stripe-authorization.created": link(sql, relay, true),
    "payments.stripe-authorization.updated": link(sql, relay, true),
    "payments.stripe-authorization.deleted": link(sql, relay, false),
  })(batch);
}

/** Starts the durable consumer of payments facts (its name predates this file's: keep it). */
export function followPaymentsFacts(
  sql: Sql,
  relay: FactRelay,
  bus: Bus,
  log: Logger,
): Promise<FactConsumer> {
  return consumeFacts(bus, {
    durable: "catalog-stripe-links",
    subject: "facts.payments.>",
    log,
    // A failure while the database is away is retried, never parked (shared/consumer.ts).
    dependencyProblem: () => databaseProblem(sql),
    // A restored catalog gets the links it lacks again (shared/fact_kept_position.ts).
    keptIn: keptPositions(sql, log),
    handle: (batch) => applyPaymentsFacts(sql, relay, batch),
  });
}
