/**
 * The discounts service follows the catalog's facts to stay consistent with it, even after
 * being down (the durable consumer delivers what it missed): a deleted event takes its ticket
 * codes with it (soft delete) and loses its event code; a deleted ticket is detached from every
 * code. Each change publishes its own fact, naming the actor of the catalog's change.
 * Idempotent: a redelivered fact finds nothing left to change. Every event fact also updates
 * the projection of events the anonymous checkout lookup reads (store/events.ts).
 */
import type { Bus } from "@shared/bus.ts";
import { consumeFacts, type FactConsumer } from "@shared/consumer.ts";
import { changeWithFact, type Fact, type FactRelay, type NewFact } from "@shared/facts.ts";
import type { Sql } from "@shared/db.ts";
import type { Logger } from "@shared/log.ts";
import {
  codesOfEvent,
  codesOfTicket,
  deleteCode,
  detachTicket,
  getCode,
  isId,
  type Row,
  unapplyEvent,
} from "./store/codes.ts";
import { projectEvent } from "./store/events.ts";

function codeFact(fact: Fact, verb: string, row: Row): NewFact {
  return {
    service: "discounts",
    type: "discount-code",
    verb,
    actor: fact.actor,
    resource: { type: "discount-code", id: String(row.id) },
    data: row,
  };
}

async function eventDeleted(sql: Sql, relay: FactRelay, fact: Fact): Promise<void> {
  const eventId = fact.resource.id;
  if (!isId(eventId)) return;
  await changeWithFact(sql, relay, async (tx) => {
    const affected = await codesOfEvent(tx, eventId);
    const changed: { verb: string; row: Row }[] = [];
    for (const code of affected) {
      const codeId = String(code.id);
      if (String(code.event_id) === eventId) {
        // A ticket code of the deleted event goes with it.
        await deleteCode(tx, codeId, false);
        changed.push({ verb: "deleted", row: (await getCode(tx, codeId, true))! });
      } else {
        // The event code applied to it stays, applied to one event fewer.
        await unapplyEvent(tx, eventId);
        changed.push({ verb: "updated", row: (await getCode(tx, codeId, true))! });
      }
    }
    return changed;
  }, (changed) => changed.map(({ verb, row }) => codeFact(fact, verb, row)));
}

async function ticketDeleted(sql: Sql, relay: FactRelay, fact: Fact): Promise<void> {
  const ticketId = fact.resource.id;
  if (!isId(ticketId)) return;
  await changeWithFact(sql, relay, async (tx) => {
    const affected = await codesOfTicket(tx, ticketId);
    await detachTicket(tx, ticketId);
    const rows: Row[] = [];
    for (const code of affected) rows.push((await getCode(tx, String(code.id), true))!);
    return rows;
  }, (rows) => rows.map((row) => codeFact(fact, "updated", row)));
}

/** What an event fact says of the event: its data is the event row (before a delete). */
async function eventChanged(sql: Sql, fact: Fact): Promise<void> {
  const data = fact.data ?? {};
  const identifier = data.identifier;
  const state = data.state;
  if (typeof identifier !== "string" || typeof state !== "string") return;
  await projectEvent(sql, {
    id: fact.resource.id,
    identifier,
    state,
    deleted: fact.verb === "deleted" || !!data.deleted_at,
  }, new Date(fact.occurredAt));
}

/** Applies a batch of catalog facts (exported for tests). */
export async function applyCatalogFacts(sql: Sql, relay: FactRelay, batch: Fact[]): Promise<void> {
  for (const fact of batch) {
    if (fact.type === "event") await eventChanged(sql, fact);
    if (fact.verb !== "deleted") continue;
    if (fact.type === "event") await eventDeleted(sql, relay, fact);
    else if (fact.type === "ticket") await ticketDeleted(sql, relay, fact);
  }
}

export function followCatalog(
  options: { sql: Sql; bus: Bus; relay: FactRelay; log: Logger },
): Promise<FactConsumer> {
  const { sql, bus, relay, log } = options;
  return consumeFacts(bus, {
    durable: "discounts-catalog",
    subject: "facts.catalog.>",
    log,
    handle: (batch) => applyCatalogFacts(sql, relay, batch),
  });
}
