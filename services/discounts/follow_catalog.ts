/**
 * The discounts service follows the catalog's facts to stay consistent with it, even after
 * being down (the durable consumer delivers what it missed): a deleted event takes its ticket
 * codes with it (soft delete; a purge deletes them for good, trashed ones too) and loses its
 * event code; a deleted ticket is detached from every live code (a purged one from every code,
 * trashed ones too); a purged user is no code's marketer any more. A purge leaves no code
 * naming what is gone. Each change publishes its own fact, naming the actor of the catalog's
 * change (a trashed code's `updated` fact carries its `deleted-at`: it stays deleted).
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
import { keptPositions } from "@shared/fact_kept_position.ts";
import { changeWithFact, type Fact, factActor, type NewFact } from "@shared/facts.ts";
import { type FactRelay } from "@shared/fact_relay.ts";
import type { Queryable, Sql } from "@shared/db.ts";
import { databaseProblem } from "@shared/db_health.ts";
import type { Logger } from "@shared/log.ts";
import {
  type CodeRow,
  codesOfEvent,
  deleteCode,
  detachTicket,
  forgetMarketer,
  getCode,
  lockCodesOfEvent,
  purgeCodesOfEvent,
  unapplyEvent,
} from "./store/codes.ts";
import { liveSince, projectEvent } from "./store/events.ts";
import { holdCatalogName } from "./store/catalog_names.ts";
import { codeFact as codeFactOf, type CodeVerb } from "./fact_payloads.ts";

type EventFact = Fact<`catalog.event.${"created" | "updated" | "deleted"}`>;

/** A code changed because of a catalog fact: the same actor. */
function codeFact(fact: Fact, verb: CodeVerb, row: CodeRow, purged = false): NewFact {
  return { ...codeFactOf(factActor(fact), verb, row), ...(purged ? { purged: true } : {}) };
}

/** A code that lost what `fact` took away (`changed`: that relationship), as it is now. */
async function lostCode(tx: Queryable, fact: Fact, id: string, changed: string): Promise<NewFact> {
  return codeFactOf(factActor(fact), "updated", (await getCode(tx, id, true))!, [changed]);
}

/** Codes `ids` as they are now (trashed included), each with its `updated` fact. */
async function updatedCodes(
  tx: Queryable,
  fact: Fact,
  { ids, changed }: { ids: string[]; changed: string },
): Promise<NewFact[]> {
  const facts: NewFact[] = [];
  for (const id of ids) facts.push(await lostCode(tx, fact, id, changed));
  return facts;
}

/**
 * Longer than a deletion's transaction can last (its request deadline bounds it): the fact's
 * `time` is taken inside it, before its commit, and a code written just before the commit (the
 * catalog_names lock waits for it) began after that `time`, and must still be trashed.
 */
export const LATER_CODE_MARGIN_MS = 60_000;

/** The latest a code or an event code's application may be made and still go with `fact`. */
function latestBefore(fact: EventFact): Date {
  return new Date(new Date(fact.time).getTime() + LATER_CODE_MARGIN_MS);
}

/**
 * A ticket code created well after the event's deletion was announced: it can only belong to
 * the event restored meanwhile (a code's write checks its event is live), and a deletion handled
 * late must not trash it (found by a review: such a code went to the trash with its event live).
 * The same holds for an event code applied to the event that late (`unapplyEvent`).
 */
function madeLater(code: CodeRow, fact: EventFact): boolean {
  return code.created_at.getTime() > latestBefore(fact).getTime();
}

/**
 * A deleted event: its live ticket codes go to the trash with it, the event code applied to it
 * stays, applied to one event fewer; a code made, or an event code applied, well after the
 * deletion was announced is left as it is (`madeLater`). A purge first deletes its ticket codes
 * for good, trashed ones too (`deleted` facts marked `purged`): a ticket code has no meaning,
 * nor a valid row, without its event, and a purge leaves nothing behind.
 */
async function eventDeleted(sql: Sql, relay: FactRelay, fact: EventFact): Promise<void> {
  const eventId = fact.data.id;
  if (!isId(eventId)) return;
  await changeWithFact(sql, relay, async (tx) => {
    // Codes written while the event was being deleted are waited for (store/catalog_names.ts).
    await holdCatalogName(tx, "event", eventId);
    // Restored since (a later fact said so): a replay of the deletion, nothing of it is left.
    if (!fact.purged && await liveSince(tx, eventId, new Date(fact.time))) return [];
    await lockCodesOfEvent(tx, eventId);
    const changed: NewFact[] = [];
    if (fact.purged) {
      for (const row of await purgeCodesOfEvent(tx, eventId)) {
        changed.push(codeFact(fact, "deleted", row, true));
      }
    }
    for (const code of await codesOfEvent(tx, eventId)) {
      const codeId = String(code.id);
      if (String(code.event_id) === eventId) {
        if (madeLater(code, fact)) continue;
        await deleteCode(tx, codeId, false);
        changed.push(codeFact(fact, "deleted", (await getCode(tx, codeId, true))!));
      } else if (await unapplyEvent(tx, eventId, latestBefore(fact))) {
        changed.push(await lostCode(tx, fact, codeId, "events"));
      }
    }
    return changed;
  }, (changed) => changed);
}

async function ticketDeleted(
  sql: Sql,
  relay: FactRelay,
  fact: Fact<"catalog.ticket.deleted">,
): Promise<void> {
  const ticketId = fact.data.id;
  if (!isId(ticketId)) return;
  await changeWithFact(sql, relay, async (tx) => {
    await holdCatalogName(tx, "ticket", ticketId);
    const detached = await detachTicket(tx, ticketId, { purged: fact.purged === true });
    return await updatedCodes(tx, fact, { ids: detached, changed: "tickets" });
  }, (facts) => facts);
}

/**
 * A purged user is no code's marketer any more, trashed codes included. A soft-deleted user
 * may be restored: their codes keep them.
 */
async function userDeleted(
  sql: Sql,
  relay: FactRelay,
  fact: Fact<"catalog.user.deleted">,
): Promise<void> {
  const userId = fact.data.id;
  if (!fact.purged || !isId(userId)) return;
  await changeWithFact(sql, relay, async (tx) => {
    return await updatedCodes(tx, fact, {
      ids: await forgetMarketer(tx, userId),
      changed: "marketer",
    });
  }, (facts) => facts);
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
    "catalog.user.deleted": (fact) => userDeleted(sql, relay, fact),
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
    // A failure while the database is away is retried, never parked (shared/consumer.ts).
    dependencyProblem: () => databaseProblem(sql),
    // A restored database gets the deletions it lacks again (shared/fact_kept_position.ts).
    keptIn: keptPositions(sql, log),
    handle: async (batch) => {
      await applyCatalogFacts(sql, relay, batch);
      announceProjected(bus, batch);
    },
  });
}
