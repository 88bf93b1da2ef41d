/**
 * Connected Stripe accounts as the handlers and the catalog follower keep them: sealing a code
 * exchange's keys, opening the account id, the accounts lock every link and unlink holds, and
 * disconnecting an account no authorization uses.
 * (Replies, checks and the 404 are the handler kit's: @shared/handlers/mod.ts.)
 */
import { type Queryable, transaction, type Tx } from "@shared/db.ts";
import { isDatabaseOutage, loggedByDatabaseWatch } from "@shared/db_watch.ts";
import { COMMIT_MARGIN_MS, remainingMs } from "@shared/deadline.ts";
import { ServiceUnavailableError } from "@shared/errors.ts";
import { LinePace } from "@shared/log.ts";
import { type PaymentsContext, secretBox, stripeSettings } from "../context.ts";
import type { SecretBox } from "../crypto.ts";
import {
  accountInUse,
  type AuthorizationRow,
  deleteAuthorization,
  getNewestAuthorization,
  lockAccounts,
  type SealedValues,
} from "../store/authorizations.ts";
import {
  claimRelease,
  deleteRelease,
  dueReleases,
  insertRelease,
  postponeRelease,
  releaseNow,
} from "../store/releases.ts";
import {
  deauthorize,
  DeauthorizeRefusedError,
  type StripeSettings,
  type StripeTokens,
} from "../stripe.ts";

/** Contexts bind each sealed value to its column and event: swapped values fail to open. */
function sealContext(column: string, eventId: string): string {
  return `${column}:event:${eventId}`;
}

export async function sealTokens(
  box: SecretBox,
  eventId: string,
  tokens: StripeTokens,
): Promise<SealedValues> {
  return {
    stripe_publishable_key: tokens.publishableKey,
    access_token: await box.seal(tokens.accessToken, sealContext("access_token", eventId)),
    refresh_token: tokens.refreshToken === null
      ? null
      : await box.seal(tokens.refreshToken, sealContext("refresh_token", eventId)),
    stripe_user_id: await box.seal(tokens.accountId, sealContext("stripe_user_id", eventId)),
    account_lookup: await box.digest(tokens.accountId),
    scope: tokens.scope,
    livemode: tokens.livemode,
  };
}

/**
 * The keyed digest a row keeps of the code it was linked with (`code_digest`): equal for the same
 * code sent again for the same event, useless without PAYMENTS_ENCRYPTION_KEY. Its own prefix
 * keeps it apart from the account lookups the same key makes.
 */
export async function codeDigest(box: SecretBox, eventId: string, code: string): Promise<string> {
  return await box.digest(`${sealContext("stripe_auth_code", eventId)}:${code}`);
}

/**
 * The stored keys cannot be opened: PAYMENTS_ENCRYPTION_KEY changed since they were sealed (keys
 * do not rotate, see crypto.ts) or the row was altered. Nothing a retry fixes: 503 for the
 * operator, and the bus logs it once at error level (the message holds no secret).
 */
class StoredKeysUnreadableError extends ServiceUnavailableError {
  constructor() {
    super("Cannot read the stored Stripe keys: PAYMENTS_ENCRYPTION_KEY does not match");
  }
}

/** The connected account's id; `StoredKeysUnreadableError` (503) when it cannot be opened. */
export async function accountIdOf(box: SecretBox, row: AuthorizationRow): Promise<string> {
  try {
    return await box.open(row.stripe_user_id, sealContext("stripe_user_id", row.event_id));
  } catch {
    throw new StoredKeysUnreadableError();
  }
}

/**
 * Throws when `box` does not open the stored keys (the newest row's account id), for a process
 * to refuse to start with it: keys do not rotate (crypto.ts), so such an instance could change no
 * stored link and find no account for a webhook. Found by an operator review (2026-12-06): an
 * instance given another key started and `/health` counted it well; only each PATCH or DELETE
 * that reached it said so (503), and beside an instance with the right key, about half of them.
 */
export async function checkKeyOpensStoredKeys(sql: Queryable, box: SecretBox): Promise<void> {
  const row = await getNewestAuthorization(sql);
  if (!row) return;
  try {
    await accountIdOf(box, row);
  } catch {
    throw new Error(
      "PAYMENTS_ENCRYPTION_KEY does not open the Stripe keys stored in the database (sealed " +
        "with another key, and keys do not rotate). Set the key they were sealed with.",
    );
  }
}

/** Longest wait for the accounts lock outside a request (catalog facts, releases). */
const LOCK_WAIT_WITHOUT_DEADLINE_MS = 4_000; // below the pool's statement timeout (5 s)

/**
 * How long the lock's transaction may sit idle beyond a whole Stripe call (its answer read, the
 * next statement sent) before Postgres ends the session and so frees the lock.
 */
const HOLD_MARGIN_MS = 1_000;

/**
 * What the statements after the Stripe call (sealing, the row's write, its fact, a keyed
 * request's answer) may take: the commit is refused with less than COMMIT_MARGIN_MS left after
 * them, so the wait for the lock keeps both.
 */
const AFTER_STRIPE_MS = 100;

/**
 * How long the accounts lock's transaction may sit idle without a word to Postgres outside a
 * request (`holdAccountsLock`): what a wait under the lock for anything but Stripe (payments'
 * follower asking the catalog) must stay well within.
 */
export function lockIdleMs(ctx: PaymentsContext): number {
  return ctx.config.stripeTimeoutMs + HOLD_MARGIN_MS;
}

/** Each payments instance's (by its logger) warnings of too little time for Stripe. */
const shortDeadlineWarnings = new WeakMap<object, LinePace>();

/**
 * Warns, once a minute, of a Stripe change that came with less time left than a whole Stripe call
 * and what follows it take. It goes ahead (a slow answer then meets the deadline at commit, a 504,
 * and an account Stripe connected meanwhile is released), but when every one comes so, the
 * gateway's REQUEST_TIMEOUT_MS is below this STRIPE_TIMEOUT_MS: `loadConfig` checks the two only
 * within one process, and a gateway given its own skipped it without a word (an operator review,
 * 2026-12-06).
 */
function warnOfShortDeadline(ctx: PaymentsContext, left: number): void {
  let pace = shortDeadlineWarnings.get(ctx.log);
  if (pace === undefined) shortDeadlineWarnings.set(ctx.log, pace = new LinePace(60_000));
  if (!pace.due()) return;
  ctx.log.warn(
    "a Stripe change came with less time left than a Stripe call may take: a slow answer will " +
      "be a 504; if every one comes so, raise the gateway's REQUEST_TIMEOUT_MS above " +
      `STRIPE_TIMEOUT_MS (${ctx.config.stripeTimeoutMs} ms here) by ` +
      `${AFTER_STRIPE_MS + COMMIT_MARGIN_MS} ms or more`,
    { leftMs: Math.floor(left) },
  );
}

/**
 * Takes the accounts lock in `tx` (store: `lockAccounts`), waiting no longer than leaves the Stripe
 * call that follows its whole STRIPE_TIMEOUT_MS, the statements after it and the commit before the
 * request's deadline: a 503 at once rather than a 504 after Stripe acted.
 *
 * Held at most a Stripe call (plus HOLD_MARGIN_MS) without a word to Postgres, with or without a
 * deadline: a frozen (VM paused, SIGSTOP) or partitioned instance must not keep every link, unlink
 * and webhook of every instance at 503 until TCP gives up on its connection (hours).
 */
export async function holdAccountsLock(ctx: PaymentsContext, tx: Tx): Promise<void> {
  const left = remainingMs();
  const stripeMs = ctx.config.stripeTimeoutMs;
  const waitMs = Number.isFinite(left)
    ? left - stripeMs - AFTER_STRIPE_MS - COMMIT_MARGIN_MS
    : LOCK_WAIT_WITHOUT_DEADLINE_MS;
  if (waitMs <= 0) warnOfShortDeadline(ctx, left);
  // Never longer than the deadline's own bound (set by `bounded`).
  const holdMs = Math.min(lockIdleMs(ctx), left);
  await lockAccounts(tx, { waitMs, holdMs });
}

/** The context the queue seals account ids with (never opened as an authorization's). */
const RELEASE_CONTEXT = "stripe_user_id:release";

/** How many due releases one pass takes on (the rest wait for the next). */
const RELEASES_PER_PASS = 20;

/**
 * Queues `account` for release (`releaseQueued`) in `sql`: in the transaction that frees it, so
 * the release is as durable as the change; or on its own after a link's rollback.
 */
export async function queueRelease(
  ctx: PaymentsContext,
  sql: Queryable,
  account: { id: string; lookup: string },
): Promise<void> {
  const stripe_user_id = await secretBox(ctx).seal(account.id, RELEASE_CONTEXT);
  await insertRelease(sql, { account_lookup: account.lookup, stripe_user_id });
}

/**
 * How long past a link's deadline its provisional release waits before it is due: by then the
 * link's transaction has ended (its COMMIT is refused with less than COMMIT_MARGIN_MS left), so a
 * release pass never takes one whose link may still commit.
 */
const PROVISIONAL_MARGIN_MS = 2_000;

/**
 * Queues the release of `accountId`, just exchanged for a link whose row is not stored yet, on
 * `ctx.ownConnection`, where it commits at once: a process that dies (SIGKILL, out of memory, its
 * machine gone) between Stripe's answer and the link's COMMIT leaves it queued, and the next pass
 * of any instance disconnects the account (a fault review, 2026-12-05: killed there, the account
 * stayed connected with no row and nothing left to release it). Due only after the link's
 * deadline: the link's transaction withdraws it as it stores the row (`withdrawRelease`), and a
 * link rolled back makes it due at once (`releaseAfterRollback`). Its id.
 */
export async function queueProvisionalRelease(
  ctx: PaymentsContext,
  accountId: string,
): Promise<string> {
  const box = secretBox(ctx);
  const left = remainingMs();
  const linkMs = Number.isFinite(left)
    ? Math.max(left, 0)
    : LOCK_WAIT_WITHOUT_DEADLINE_MS + ctx.config.stripeTimeoutMs + HOLD_MARGIN_MS;
  return await insertRelease(ctx.ownConnection, {
    account_lookup: await box.digest(accountId),
    stripe_user_id: await box.seal(accountId, RELEASE_CONTEXT),
  }, linkMs + PROVISIONAL_MARGIN_MS);
}

/** The link stores its row in `tx`: its provisional release goes with the same COMMIT. */
export async function withdrawRelease(tx: Tx, id: string): Promise<void> {
  await deleteRelease(tx, id);
}

/**
 * A link rolled back: its provisional release is made due and a pass run after the reply (made due
 * once Postgres is back, when it was lost: the rollback's usual cause; past QUEUE_PATIENCE_MS the
 * release falls due by itself and a later pass takes it).
 */
export async function releaseAfterRollback(ctx: PaymentsContext, id: string): Promise<void> {
  await whileUnreachable(ctx, () => releaseNow(ctx.sql, id));
  await releaseQueued(ctx);
}

/** How long the release of an account a rolled-back link exchanged waits for a lost Postgres. */
const QUEUE_PATIENCE_MS = 30_000;
/** The first pause between its tries (doubled up to 2 s): only the first failure is logged. */
const FIRST_PAUSE_MS = 250;

/**
 * Runs `attempt` (the statement that queues, or makes due, the release of an account a link
 * exchanged and did not store), again while Postgres is unreachable: a change cut off by a lost
 * Postgres is rolled back for that very reason, and until 2026-12-03 its release was lost with it
 * (the account stayed connected with no row). An outage longer than QUEUE_PATIENCE_MS is thrown
 * (the background task logs it). The first failure is logged, as a release that fails is: an
 * account connected without a row meanwhile is an operator's matter, and the fault tests wait for
 * this line to bring Postgres back (nothing else shows the attempt).
 */
export async function whileUnreachable(
  ctx: PaymentsContext,
  attempt: () => Promise<unknown>,
): Promise<void> {
  const giveUpAt = Date.now() + QUEUE_PATIENCE_MS;
  for (let pause = FIRST_PAUSE_MS;; pause = Math.min(pause * 2, 2_000)) {
    try {
      return void await attempt();
    } catch (error) {
      // A read-only database (a failover under way) heals as an outage does.
      if (!loggedByDatabaseWatch(error) || Date.now() + pause > giveUpAt) throw error;
      if (pause === FIRST_PAUSE_MS) {
        ctx.log.warn("cannot queue an unstored Stripe account's release yet; trying again", {
          reason: (error as Error).message,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * Disconnects every queued account that is due and no authorization uses (one account may serve
 * several events: deauthorizing it would break the others), each under the accounts lock, so no
 * link of the account lands between the check and the call. Run after the reply that queued one
 * (an exchange plus a deauthorization back to back could outlast REQUEST_TIMEOUT_MS), at start
 * and every RELEASE_RETRY_MS. A release that fails waits longer each time and is tried again;
 * Stripe saying the account is not connected counts as done. A pass cut off by a Postgres outage
 * is run again soon (`retrySoon`), not after RELEASE_RETRY_MS. Never throws.
 */
export async function releaseQueued(ctx: PaymentsContext): Promise<void> {
  if (!ctx.box || !ctx.config.stripeSecretKey || !ctx.config.stripeClientId) return;
  let due: string[];
  try {
    due = await dueReleases(ctx.sql, RELEASES_PER_PASS);
  } catch (error) {
    ctx.log.warn("cannot read the Stripe accounts to release", {
      reason: (error as Error).message,
    });
    if (isDatabaseOutage(error)) retrySoon(ctx);
    return;
  }
  let outage = false;
  for (const id of due) outage = await releaseOne(ctx, id) === "outage" || outage;
  if (outage) retrySoon(ctx);
  else retries.get(ctx)?.reset();
}

/** The first pause before a pass cut off by an outage runs again; it doubles up to the last. */
const SOON_FIRST_MS = 250;
const SOON_MOST_MS = 2_000;

/** Per running service: its one pending soon retry, and whether the service stopped. */
const retries = new WeakMap<PaymentsContext, ReturnType<typeof soonRetries>>();

function soonRetries() {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pause = 0;
  let stopped = false;
  return {
    schedule(run: () => void): void {
      if (stopped || timer !== undefined) return; // one pending retry covers every pass
      pause = Math.min(Math.max(pause * 2, SOON_FIRST_MS), SOON_MOST_MS);
      timer = setTimeout(() => {
        timer = undefined;
        run();
      }, pause);
    },
    reset: () => pause = 0,
    stop(): void {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * Runs `releaseQueued` again after a short pause that grows (250 ms doubling to 2 s) while
 * Postgres stays away: releases cut off by an outage (the one in hand, whose postponement was
 * lost with it, and those still due) waited for the next RELEASE_RETRY_MS (30 s) pass. One retry
 * pending at a time, however many passes met the outage: a down Postgres gets a query every 2 s.
 */
function retrySoon(ctx: PaymentsContext): void {
  let soon = retries.get(ctx);
  if (!soon) retries.set(ctx, soon = soonRetries());
  soon.schedule(() => ctx.background.run(() => releaseQueued(ctx)));
}

/** Ends the soon retries of `ctx` (its service stops); later passes schedule none. */
export function stopReleaseRetries(ctx: PaymentsContext): void {
  let soon = retries.get(ctx);
  if (!soon) retries.set(ctx, soon = soonRetries());
  soon.stop();
}

/** Tries release `id` once; "outage" when Postgres was lost, which is not the release's failure. */
async function releaseOne(ctx: PaymentsContext, id: string): Promise<"outage" | undefined> {
  // Failed tries so far, for the log: a release failing again and again is an operator's matter.
  let failedBefore: number | undefined;
  try {
    await transaction(ctx.sql, async (tx) => {
      const release = await claimRelease(tx, id);
      if (!release) return; // taken by another instance, or done meanwhile
      failedBefore = release.attempts;
      await holdAccountsLock(ctx, tx);
      if (!await accountInUse(tx, release.account_lookup)) {
        const accountId = await secretBox(ctx).open(release.stripe_user_id, RELEASE_CONTEXT);
        await deauthorizeUnused(ctx, accountId);
      }
      await deleteRelease(tx, id);
    });
  } catch (error) {
    ctx.log.warn("cannot deauthorize an unused Stripe account yet; it will be tried again", {
      release: id,
      attempt: failedBefore === undefined ? undefined : failedBefore + 1,
      reason: (error as Error).message,
    });
    // Not postponed (nor counted): postponed by a Postgres back already, the soon retry found it
    // not due and it waited seconds more, until the next RELEASE_RETRY_MS pass.
    if (isDatabaseOutage(error)) return "outage";
    await postponeRelease(ctx.sql, id).catch(() => {});
  }
}

/** Deauthorizes `accountId`; Stripe refusing (not connected any more) is logged as done. */
async function deauthorizeUnused(ctx: PaymentsContext, accountId: string): Promise<void> {
  try {
    await deauthorize(stripeSettings(ctx), accountId);
  } catch (error) {
    if (!(error instanceof DeauthorizeRefusedError)) throw error;
    ctx.log.warn("cannot deauthorize an unused Stripe account: Stripe says it is not connected", {
      reason: error.message,
    });
  }
}

/**
 * Disconnects `row`'s account at Stripe unless another authorization uses it (one account may
 * serve several events). Stripe refusing means the account is not connected any more: nothing
 * to undo, logged and not thrown, so the row can go. Any other failure is thrown (the row stays).
 */
async function deauthorizeUnlessShared(
  ctx: PaymentsContext,
  tx: Tx,
  { row, stripe }: { row: AuthorizationRow; stripe: StripeAccess },
): Promise<void> {
  const accountId = await accountIdOf(stripe.box, row);
  if (await accountInUse(tx, row.account_lookup, { except: row.id })) return;
  try {
    await deauthorize(stripe.settings, accountId);
  } catch (error) {
    if (!(error instanceof DeauthorizeRefusedError)) throw error;
    // `id`, not `authorization`: the logger redacts fields named like credentials.
    ctx.log.warn("Stripe refused to deauthorize; deleting the authorization anyway", {
      id: row.id,
      reason: error.message,
    });
  }
}

/** What talking to Stripe about a stored authorization needs. */
export interface StripeAccess {
  settings: StripeSettings;
  box: SecretBox;
}

/**
 * Unlinks an authorization inside `tx` (with its fact, `changeWithFact`): takes the accounts lock,
 * reads the row through `find` (under the lock: a PATCH may have moved it to another account
 * since it was last read), deletes the row as read, then deauthorizes its account unless another
 * row uses it. Null when there is none. A failed Stripe call throws: the delete is rolled back and
 * the row stays, to retry. The delete comes first so that whatever it waits for (a lock a
 * migration holds) is met before Stripe is asked: deauthorized first, an unlink held at its
 * DELETE until the deadline was answered 504 with the account gone at Stripe (a review,
 * 2026-12-05). Only the COMMIT follows the call now.
 */
export async function unlinkAuthorization(
  ctx: PaymentsContext,
  tx: Tx,
  options: { find: (tx: Tx) => Promise<AuthorizationRow | null>; stripe: StripeAccess },
): Promise<AuthorizationRow | null> {
  await holdAccountsLock(ctx, tx);
  const row = await options.find(tx);
  if (!row) return null;
  const deleted = await deleteAuthorization(tx, row);
  if (!deleted) return null;
  await deauthorizeUnlessShared(ctx, tx, { row: deleted, stripe: options.stripe });
  return deleted;
}
