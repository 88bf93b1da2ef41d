/**
 * Payments follows the catalog's event facts, so a deleted event does not leave its Stripe
 * account connected for good (its authorization is unreachable once the event is gone: the
 * routes answer 404). On `event deleted` the account is deauthorized at Stripe, unless another
 * live authorization uses it, and the row is deleted with the usual "deleted" fact, naming the
 * actor of the catalog's change: an unlink like DELETE's, under the same accounts lock. The
 * durable consumer delivers what payments missed while down.
 *
 * Idempotent on redelivery: a row already deleted leaves nothing to do, and an account already
 * deauthorized is refused by Stripe as "not connected", which counts as done. Stripe unreachable,
 * slow or failing: the batch is thrown back for redelivery. Anything no retry can fix (Stripe
 * turning the platform away, Stripe or PAYMENTS_ENCRYPTION_KEY not configured, stored keys that
 * do not open) parks the fact and keeps the row, for an operator, instead of looping forever; an
 * event without an authorization needs neither Stripe nor the key.
 */
import type { Tx } from "@shared/db.ts";
import { databaseProblem } from "@shared/db_health.ts";
import { isId } from "@shared/schemas/ids.ts";
import type { Bus } from "@shared/bus.ts";
import { consumeFacts, type FactConsumer, type HandleResult } from "@shared/consumer.ts";
import { keptPositions } from "@shared/fact_kept_position.ts";
import { ServiceUnavailableError } from "@shared/errors.ts";
import { changeWithFact, type Fact, factActor } from "@shared/facts.ts";
import { catalogInternal } from "@shared/subjects.ts";
import { type PaymentsContext, secretBox, stripeSettings } from "./context.ts";
import { lockIdleMs, unlinkAuthorization } from "./handlers/accounts.ts";
import { authorizationFact } from "./fact_payloads.ts";
import { AccountsBusyError, getAuthorizationOfEvent } from "./store/authorizations.ts";
import { DeauthorizeRejectedError } from "./stripe.ts";

/** Durable consumer name: shared by every payments instance. */
const CATALOG_CONSUMER = "payments-catalog";

/** How long payments waits for the catalog to say whether an event is live, at most. */
const LIVE_QUESTION_TIMEOUT_MS = 2_000;
/** What is left of the lock's idle limit (`lockIdleMs`) once the catalog has answered. */
const LIVE_QUESTION_MARGIN_MS = 250;

/**
 * How far the clock of the deletion's fact (the catalog process's) and the clock of a link's row
 * (payments' database) may disagree: keep the hosts in sync (NTP).
 */
const CLOCK_SKEW_MARGIN_MS = 60_000;

/**
 * The event's authorization, unless it may have been linked (or re-linked) after the deletion was
 * announced and the event is live again. Such a link belongs to the event restored meanwhile; or
 * it checked the event live just before the deletion committed (the fact's `time` is taken inside
 * that transaction), and then the event is still deleted and the link is released. A deletion
 * handled late (payments down, a follower rebuilt, a batch retried) after a restore and a new link
 * removed that link and deauthorized its account: until 2026-12-06 only a link made over a minute
 * after the deletion was kept (found by reviews). The two times come from two clocks, so a link
 * within CLOCK_SKEW_MARGIN_MS before the deletion is asked about too: one made just before it, of
 * an event restored since, is kept.
 */
async function linkedBefore(ctx: PaymentsContext, tx: Tx, eventId: string, deletedAt: Date) {
  const row = await getAuthorizationOfEvent(tx, eventId);
  if (!row || row.updated_at.getTime() <= deletedAt.getTime() - CLOCK_SKEW_MARGIN_MS) return row;
  const live = await eventLive(ctx, eventId);
  // A word to Postgres: the lock's idle limit is sized for the Stripe call, which may come next.
  await tx`select 1`;
  return live ? null : row;
}

/**
 * Whether the catalog holds `eventId` live now, whoever looks; asked under the accounts lock, so
 * within its idle limit. A catalog that cannot answer throws an error that is no
 * ServiceUnavailableError: the batch comes back (a 503 parks a fact).
 */
async function eventLive(ctx: PaymentsContext, eventId: string): Promise<boolean> {
  const timeoutMs = Math.min(LIVE_QUESTION_TIMEOUT_MS, lockIdleMs(ctx) - LIVE_QUESTION_MARGIN_MS);
  try {
    const { live } = await ctx.bus.request(catalogInternal.liveEvents, { ids: [eventId] }, {
      timeoutMs: Math.max(timeoutMs, 1),
    });
    return live.includes(eventId);
  } catch (error) {
    throw new Error(`Cannot ask the catalog whether event ${eventId} is live`, { cause: error });
  }
}

/** Why the fact can never be handled (it is parked), or null when it was. */
async function eventDeleted(
  ctx: PaymentsContext,
  fact: Fact<"catalog.event.deleted">,
): Promise<string | null> {
  const eventId = fact.data.id;
  if (!isId(eventId)) return null;
  // Looked for under the accounts lock, even when there seems to be none: a link of this event
  // may hold the lock with its row not committed yet (it checked the event before its deletion),
  // and it must be found once committed, or its account stays connected for good.
  try {
    // Asked for only when there is an account to release: without Stripe configured (as
    // `deno task start` runs by default) every event deletion was parked, with an error logged,
    // though no event could have a link (found following the README, 2026-12-04).
    const stripe = {
      get settings() {
        return stripeSettings(ctx);
      },
      get box() {
        return secretBox(ctx);
      },
    };
    await changeWithFact(
      ctx.sql,
      ctx.relay,
      (tx) =>
        unlinkAuthorization(ctx, tx, {
          find: (tx) => linkedBefore(ctx, tx, eventId, new Date(fact.time)),
          stripe,
        }),
      (deleted) => deleted && authorizationFact(factActor(fact), "deleted", deleted),
    );
  } catch (error) {
    // Another link or unlink held the lock too long: like a slow Stripe, the batch comes back.
    if (error instanceof AccountsBusyError) throw error;
    if (
      error instanceof DeauthorizeRejectedError || error instanceof ServiceUnavailableError
    ) {
      ctx.log.error("cannot release the Stripe account of a deleted event; the fact is parked", {
        event: eventId,
        reason: error.message,
      });
      return error.message;
    }
    // Unreachable, slow or failing: the whole batch comes back (the rest is idempotent).
    throw error;
  }
  return null;
}

/** Applies a batch of catalog facts (exported for tests). */
export async function applyCatalogFacts(
  ctx: PaymentsContext,
  batch: Fact[],
): Promise<HandleResult> {
  const reject: { id: string; reason: string }[] = [];
  for (const fact of batch) {
    if (fact.type !== "catalog.event.deleted") continue;
    const reason = await eventDeleted(ctx, fact);
    if (reason) reject.push({ id: fact.id, reason });
  }
  return { reject };
}

export function followCatalogFacts(ctx: PaymentsContext, bus: Bus): Promise<FactConsumer> {
  return consumeFacts(bus, {
    durable: CATALOG_CONSUMER,
    subject: "facts.catalog.event.>",
    log: ctx.log,
    // A failure while the database is away is retried, never parked (shared/consumer.ts).
    dependencyProblem: () => databaseProblem(ctx.sql),
    // A restored database gets the deletions it lacks again (shared/fact_kept_position.ts).
    keptIn: keptPositions(ctx.sql, ctx.log),
    handle: (batch) => applyCatalogFacts(ctx, batch),
  });
}
