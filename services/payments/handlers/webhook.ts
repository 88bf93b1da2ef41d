/**
 * `POST /v1/webhooks/stripe`. Only signed, fresh events count; each event id is handled once
 * (Stripe retries deliveries, and a captured request may be replayed inside the tolerance).
 * `account.application.deauthorized` removes every authorization of that account (it may serve
 * several events) linked before the deauthorization, and announces each removal, by the system.
 * Anything else is acknowledged without effect, so Stripe does not keep retrying it.
 */
import { BadRequestError, ServiceUnavailableError } from "@shared/errors.ts";
import { changeWithFact } from "@shared/facts.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { type PaymentsContext, secretBox } from "../context.ts";
import {
  type AuthorizationRow,
  deleteAuthorizationsOfAccount,
  recordWebhookEvent,
} from "../store/authorizations.ts";
import { verifyStripeSignature } from "../webhook_signature.ts";
import { authorizationFact } from "../fact_payloads.ts";
import { holdAccountsLock } from "./accounts.ts";

const DEAUTHORIZED = "account.application.deauthorized";

/**
 * Stripe's `created` counts whole seconds, by Stripe's clock: a link made this soon after a
 * deauthorization is taken as older than it (removed; the organizer links again) rather than a
 * dead link being kept because the clocks differ.
 */
const DEAUTHORIZED_LINK_MARGIN_S = 5;

interface StripeEvent {
  id: string;
  type: string;
  account?: string;
  /** When Stripe created the event (seconds since the epoch), if the event says. */
  created?: number;
  /** The mode the event is of (live or test), if the event says. */
  livemode?: boolean;
}

/** 9999-12-31T23:59:59Z in Unix seconds: the latest `created` a webhook may carry. */
const LAST_SECOND_OF_9999 = 253_402_300_799;

/** A signed body that is no Stripe event: 400 pointing at what is wrong, for whoever debugs it. */
function notAnEvent(why: string, pointer: string): never {
  throw new BadRequestError(`Cannot accept the webhook: ${why}`, { pointer });
}

/**
 * `value` when it is text Postgres can hold, not empty and of at most `max` characters (any length
 * without one); else a 400 at `field`.
 */
function eventText(value: unknown, field: "id" | "type", max?: number): string {
  if (typeof value !== "string" || !value || (max !== undefined && value.length > max)) {
    const size = max === undefined ? "that is not empty" : `of 1 to ${max} characters`;
    notAnEvent(`its ${field} must be a string ${size}`, `/${field}`);
  }
  // Postgres refuses NUL in text: without this a signed event with one in its id was a 500.
  if (value.includes("\0")) notAnEvent(`its ${field} contains a NUL character`, `/${field}`);
  return value;
}

function parseEvent(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    notAnEvent("the body is not JSON", "");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    notAnEvent("the body is not a JSON object, so not a Stripe event", "");
  }
  return parsed as Record<string, unknown>;
}

function readEvent(text: string): StripeEvent {
  const event = parseEvent(text);
  const id = eventText(event.id, "id", 255);
  // Longer types are kept cut (the column holds 255); only the deauthorization acts.
  const type = eventText(event.type, "type").slice(0, 255);
  const account = typeof event.account === "string" ? event.account : undefined;
  const created = Number.isSafeInteger(event.created) && (event.created as number) >= 0
    ? event.created as number
    : undefined;
  // A time no date holds (after 9999, as elsewhere here) was a 500 when it reached Postgres.
  if (created !== undefined && created > LAST_SECOND_OF_9999) {
    notAnEvent("its created time is out of range (after 9999-12-31)", "/created");
  }
  const livemode = typeof event.livemode === "boolean" ? event.livemode : undefined;
  return { id, type, account, created, livemode };
}

/**
 * Links made after this are newer than the deauthorization and stay: Stripe retries a delivery
 * for days, and the account may have been linked again meanwhile (a new grant). Undefined (all
 * go) for an event without its time.
 */
function linkedBefore(event: StripeEvent): Date | undefined {
  if (event.created === undefined) return undefined;
  // Within 9999 with the margin too: a later Date reaches Postgres as `+010000-…` (ISO's expanded
  // year, from postgres.js's toISOString), which it cannot read (it refused one, a 400).
  const seconds = Math.min(event.created + DEAUTHORIZED_LINK_MARGIN_S, LAST_SECOND_OF_9999);
  return new Date(seconds * 1000);
}

function received(extra: Record<string, unknown> = {}): HttpReply {
  return { status: 200, body: { received: true, ...extra } };
}

/** The signed event, or 503 when STRIPE_WEBHOOK_SECRET is not set (400 for a bad signature). */
async function verifiedEvent(ctx: PaymentsContext, req: HttpRequest): Promise<StripeEvent> {
  const secret = ctx.config.stripeWebhookSecret;
  if (!secret) {
    throw new ServiceUnavailableError(
      "Cannot accept the webhook: STRIPE_WEBHOOK_SECRET is not configured",
    );
  }
  const payload = req.rawBody ?? "";
  await verifyStripeSignature({ payload, header: req.headers?.["stripe-signature"], secret });
  return readEvent(payload);
}

export async function stripeWebhook(ctx: PaymentsContext, req: HttpRequest): Promise<HttpReply> {
  const event = await verifiedEvent(ctx, req);
  const deauthorized = event.type === DEAUTHORIZED && !!event.account;
  const lookup = deauthorized ? await secretBox(ctx).digest(event.account!) : null;
  const outcome = await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx): Promise<{ replay: boolean; removed: AuthorizationRow[] }> => {
      // Removing an account's rows is an unlink too: not in the middle of a link of it.
      if (lookup) await holdAccountsLock(ctx, tx);
      if (!await recordWebhookEvent(tx, event.id, event.type)) {
        return { replay: true, removed: [] };
      }
      // Of the event's mode only: Stripe sends a live Connect endpoint the test-mode events of
      // accounts connected in live mode too (and asks platforms to read `livemode`), so a test
      // connection's deauthorization removed the live link, the account still connected.
      const removed = lookup
        ? await deleteAuthorizationsOfAccount(tx, lookup, {
          linkedBefore: linkedBefore(event),
          livemode: event.livemode,
        })
        : [];
      return { replay: false, removed };
    },
    ({ removed }) => removed.map((row) => authorizationFact(null, "deleted", row)),
  );
  if (outcome.removed.length) {
    // `ids`, not `authorizations`: the logger redacts fields named like credentials.
    ctx.log.info("Stripe account deauthorized: authorizations removed", {
      ids: outcome.removed.map((row) => row.id),
    });
  }
  return received(outcome.replay ? { duplicate: true } : {});
}
