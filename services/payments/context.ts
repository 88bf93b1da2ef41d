/**
 * What every payments handler works with, and the access rule of api-surface §5: the event's
 * organizers (owner, organizer) and admins, never co-organizers. Who the caller is and their
 * roles come from the catalog's answers as `ctx.access` keeps them (shared/access_source.ts: a
 * revoked role counts once its fact arrives, at most its age limit later).
 */
import type { Bus } from "@shared/bus.ts";
import type { Config } from "@shared/config.ts";
import type { Sql } from "@shared/db.ts";
import { withScope } from "@shared/deadline.ts";
import { ServiceUnavailableError } from "@shared/errors.ts";
import { requireActor, requireLogin } from "@shared/handlers/mod.ts";
import type { FactRelay } from "@shared/fact_relay.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";
import type { Caller, EventAccess } from "@shared/access.ts";
import type { AccessSource } from "@shared/access_source.ts";
import type { SecretBox } from "./crypto.ts";
import type { StripeSettings } from "./stripe.ts";

export interface PaymentsContext {
  sql: Sql;
  /**
   * One connection beside the pool, whose statements commit at once while a request's transaction
   * is open: the release of an account a link has just exchanged (handlers/accounts.ts).
   */
  ownConnection: Sql;
  bus: Bus;
  relay: FactRelay;
  config: Config;
  log: Logger;
  /** Null when PAYMENTS_ENCRYPTION_KEY is unset: routes that need secrets answer 503. */
  box: SecretBox | null;
  /** Work done after answering, so Stripe calls never add up on the request path. */
  background: Background;
  /** Who callers are and their roles, as the catalog answers (kept; see the file comment). */
  access: AccessSource;
}

/** Tasks started after a reply; `stop()` of the service (and tests) wait for them. */
export interface Background {
  /** Starts `task` without waiting; a failure is logged (by message only), never thrown. */
  run(task: () => Promise<void>): void;
  /** Resolves when every task started so far has finished. */
  idle(): Promise<void>;
}

/**
 * A tracker of background tasks.
 *
 * @example
 * ```ts ignore
 * const background = createBackground(log);
 * background.run(() => releaseQueued(ctx));
 * await background.idle(); // on shutdown
 * ```
 */
export function createBackground(log: Logger): Background {
  const pending = new Set<Promise<void>>();
  return {
    run(task) {
      // Outside the request that started it: not bound by its deadline, and its transactions
      // do not join the request's (shared/idempotency.ts), whose commit may wait for them.
      const detached = () => withScope({ deadline: undefined, held: undefined }, task);
      const running: Promise<void> = Promise.resolve()
        .then(detached)
        .catch((error) => {
          // Only the message: errors of Stripe calls are built without secrets.
          log.warn("a background task failed", { reason: (error as Error)?.message });
        })
        .finally(() => pending.delete(running));
      pending.add(running);
    },
    async idle() {
      while (pending.size) await Promise.all(pending);
    },
  };
}

export type { Caller, EventAccess } from "@shared/access.ts";
export { factActor, isAdmin, isOrganizer } from "@shared/access.ts";

export interface Access {
  caller: Caller;
  /** Null when the event does not exist, is deleted, or the caller may not see it. */
  event: EventAccess | null;
}

/** The caller and (when `eventKey` is given) the event, from the catalog; 401 when anonymous. */
export async function loadAccess(
  ctx: PaymentsContext,
  actor: Actor | null,
  eventKey?: string,
): Promise<Access> {
  const answer = await ctx.access.ask(requireActor(actor), eventKey);
  return { caller: requireLogin(answer.caller), event: answer.event };
}

/** The Stripe settings, or 503 when the platform is not configured for Stripe. */
export function stripeSettings(ctx: PaymentsContext): StripeSettings {
  const { stripeSecretKey, stripeClientId, stripeConnectUrl, stripeTimeoutMs } = ctx.config;
  if (!stripeSecretKey || !stripeClientId) {
    throw new ServiceUnavailableError(
      "Cannot talk to Stripe: STRIPE_SECRET_KEY and STRIPE_CLIENT_ID are not configured",
    );
  }
  return {
    connectUrl: stripeConnectUrl,
    secretKey: stripeSecretKey,
    clientId: stripeClientId,
    timeoutMs: stripeTimeoutMs,
  };
}

/** The secret box, or 503 when PAYMENTS_ENCRYPTION_KEY is not configured. */
export function secretBox(ctx: PaymentsContext): SecretBox {
  if (!ctx.box) {
    throw new ServiceUnavailableError(
      "Cannot store Stripe keys: PAYMENTS_ENCRYPTION_KEY is not configured",
    );
  }
  return ctx.box;
}
