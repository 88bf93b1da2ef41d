/**
 * The event's `is-stripe-linked` as the client reads it next. The catalog keeps the flag from
 * payments' facts (services/catalog/follow_payments.ts), which reach it a moment after the change
 * commits: a link's 201 (or an unlink's 200) went out first, and the client's next read of the
 * event showed the old value, every time (api-surface §5: success sets the flag, as the
 * original did in the same request). A link or unlink therefore waits, briefly, until the catalog
 * shows the flag as the change left it; the facts stay the way it gets there (and the durable
 * one when the catalog is down). Never fails the change, which is committed already. What it
 * learns of the event's addresses goes with the reply (`cascaded`), so that the gateway relaying
 * it drops the event's pages under each of them, as the client reads it next (until 2026-12-05 a
 * link named the event by id only, an unlink not at all: a review).
 */
import { afterCommitted } from "@shared/db.ts";
import { remainingMs } from "@shared/deadline.ts";
import type { Actor, HttpReply } from "@shared/schemas/http.ts";
import { catalogInternal } from "@shared/subjects.ts";
import type { PaymentsContext } from "../context.ts";

/** The longest a reply waits for the catalog (it usually takes a few tens of milliseconds). */
const FLAG_WAIT_MS = 1_000;
/** What is left of the request's deadline for the reply itself, once the wait gives up. */
const REPLY_MARGIN_MS = 250;
const PAUSE_MS = 10;

/** An event as the caches address it: its id, and its identifier when the catalog told it. */
export type EventAddresses = { id: string; identifier?: string };

/**
 * Waits until the catalog shows `eventId` with `is-stripe-linked` equal to `linked`, at most
 * FLAG_WAIT_MS and never into the request's last REPLY_MARGIN_MS. Only when the change has
 * committed already: with an Idempotency-Key it commits after the handler returns, and the flag
 * follows a moment later, as before. Returns the event's addresses, as far as it learned them.
 */
export async function awaitLinkedFlag(
  ctx: PaymentsContext,
  actor: Actor | null,
  eventId: string,
  linked: boolean,
): Promise<EventAddresses> {
  const addresses: EventAddresses = { id: eventId };
  let committed = false;
  afterCommitted(() => committed = true);
  if (!committed) return addresses;
  const giveUpAt = Date.now() + Math.min(FLAG_WAIT_MS, remainingMs() - REPLY_MARGIN_MS);
  while (Date.now() < giveUpAt) {
    try {
      // Asked of the catalog itself (not ctx.access, which keeps answers), bounded by the wait:
      // a catalog that hangs must not turn the committed change into a 504.
      const { event } = await ctx.bus.request(
        catalogInternal.access,
        { actor, event: eventId },
        { timeoutMs: Math.max(1, giveUpAt - Date.now()) },
      );
      if (event) addresses.identifier = event.identifier;
      // Gone (deleted meanwhile) or shown as the change left it: nothing more to wait for.
      if (!event || event.isStripeLinked === linked) return addresses;
    } catch (error) {
      ctx.log.debug("cannot read the event's is-stripe-linked; replying without it", {
        event: eventId,
        reason: (error as Error).message,
      });
      return addresses;
    }
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  return addresses;
}

/** `reply`, telling the caches that the event at `addresses` changed with it (its flag). */
export function withLinkedEvent(reply: HttpReply, addresses: EventAddresses): HttpReply {
  return { ...reply, cascaded: [...reply.cascaded ?? [], { type: "event", record: addresses }] };
}
