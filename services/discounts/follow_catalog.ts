/**
 * The discounts service follows the catalog's facts to stay consistent with it, even after
 * being down (the durable consumer delivers what it missed): a deleted event takes its ticket
 * codes with it (soft delete) and loses its event code; a deleted ticket is detached from every
 * code. Each change publishes its own fact, naming the actor of the catalog's change.
 * Idempotent: a redelivered fact finds nothing left to change. Every event fact also updates
 * the projection of events the anonymous checkout lookup reads (store/events.ts), and then
 * tells the gateways (shared/cache_touched.ts): a lookup they fetched again between the
 * catalog's fact and now may show the event as it was. Only the public payloads are read
 * (typed by the registry, shared/fact_catalog.ts).
 */
import { isId } from "@shared/schemas/ids.ts";
import type { Bus } from "@shared/bus.ts";
import { addressTags } from "@shared/cache_tags.ts";
import { announceTouched } from "@shared/cache_touched.ts";
import { byType, consumeFacts, type FactConsumer } from "@shared/consumer.ts";
import { changeWithFact, type Fact, factActor, type FactRelay } from "@shared/facts.ts";
import type { Sql } from "@shared/db.ts";
import type { Logger } from "@shared/log.ts";
import {
  type CodeRow,
  codesOfEvent,
  deleteCode,
  detachTicket,
  getCode,
  unapplyEvent,
} from "./store/codes.ts";
import { projectEvent } from "./store/events.ts";
import { codeFact as codeFactOf, type CodeVerb } from "./fact_payloads.ts";

type EventFact = Fact<`catalog.event.${"created" | "updated" | "deleted"}`>;

/** A code changed because of a catalog fact: the same actor. */
function codeFact(fact: Fact, verb: CodeVerb, row: CodeRow) {
  return codeFactOf(factActor(fact), verb, row);
}

async function eventDeleted(sql: Sql, relay: FactRelay, fact: EventFact): Promise<void> {
  const eventId = fact.data.id;
  if (!isId(eventId)) return;
  await changeWithFact(sql, relay, async (tx) => {
    const affected = await codesOfEvent(tx, eventId);
    const changed: { verb: CodeVerb; row: CodeRow }[] = [];
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

async function ticketDeleted(
  sql: Sql,
  relay: FactRelay,
  fact: Fact<"catalog.ticket.deleted">,
): Promise<void> {
  const ticketId = fact.data.id;
  if (!isId(ticketId)) return;
  await changeWithFact(sql, relay, async (tx) => {
    const detached = await detachTicket(tx, ticketId);
    const rows: CodeRow[] = [];
    for (const id of detached) rows.push((await getCode(tx, id, true))!);
    return rows;
  }, (rows) => rows.map((row) => codeFact(fact, "updated", row)));
}

/** What an event fact says of the event (its data is the event before a delete). */
async function eventChanged(sql: Sql, fact: EventFact): Promise<void> {
  const { data } = fact;
  await projectEvent(sql, {
    id: data.id,
    identifier: data.identifier,
    state: data.state,
    deleted: fact.type === "catalog.event.deleted" || data["deleted-at"] !== null,
  }, new Date(fact.time));
}

/** Applies a batch of catalog facts (exported for tests). */
export function applyCatalogFacts(sql: Sql, relay: FactRelay, batch: Fact[]): Promise<void> {
  return byType({
    "catalog.event.created": (fact) => eventChanged(sql, fact),
    "catalog.event.updated": (fact) => eventChanged(sql, fact),
    "catalog.event.deleted": async (fact) => {
      await eventChanged(sql, fact);
      await eventDeleted(sql, relay, fact);
    },
    "catalog.ticket.deleted": (fact) => ticketDeleted(sql, relay, fact),
  })(batch);
}

/**
 * The pages of the events a batch's facts changed in the projection, announced once the batch
 * is applied. Without it a lookup re-read between the catalog's fact reaching a gateway and this
 * projection following it would be served as it was for up to CACHE_SETTLE_MS.
 */
function announceProjected(bus: Bus, batch: Fact[]): void {
  const tags = new Set<string>();
  for (const fact of batch) {
    if (!fact.type.startsWith("catalog.event.")) continue;
    const { data } = fact as EventFact;
    for (const tag of addressTags("event", { ...data, id: String(data.id) })) tags.add(tag);
  }
  announceTouched(bus, [...tags]);
}

export function followCatalogFacts(
  options: { sql: Sql; bus: Bus; relay: FactRelay; log: Logger },
): Promise<FactConsumer> {
  const { sql, bus, relay, log } = options;
  return consumeFacts(bus, {
    durable: "discounts-catalog",
    subject: "facts.catalog.>",
    log,
    handle: async (batch) => {
      await applyCatalogFacts(sql, relay, batch);
      announceProjected(bus, batch);
    },
  });
}
