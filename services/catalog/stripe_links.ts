/**
 * The catalog follows the payments service's facts to keep each event's read-only
 * `is-stripe-linked` right, even when the catalog was down while the change happened (the
 * durable consumer delivers what it missed).
 */
import type { Bus } from "@shared/bus.ts";
import { consumeFacts, type FactConsumer } from "@shared/consumer.ts";
import type { Sql } from "@shared/db.ts";
import type { Fact } from "@shared/facts.ts";
import type { Logger } from "@shared/log.ts";
import { applyStripeLink } from "./store/events.ts";

const linkedByVerb: Record<string, boolean> = { created: true, updated: true, deleted: false };

export async function applyStripeFacts(sql: Sql, batch: Fact[]): Promise<void> {
  for (const fact of batch) {
    const linked = linkedByVerb[fact.verb];
    const eventId = fact.data?.event_id;
    if (fact.type !== "stripe-authorization" || linked === undefined || eventId == null) continue;
    await applyStripeLink(sql, String(eventId), linked, new Date(fact.occurredAt));
  }
}

export function followStripeLinks(sql: Sql, bus: Bus, log: Logger): Promise<FactConsumer> {
  return consumeFacts(bus, {
    durable: "catalog-stripe-links",
    subject: "facts.payments.>",
    log,
    handle: (batch) => applyStripeFacts(sql, batch),
  });
}
