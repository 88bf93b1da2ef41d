/** All SQL of the payments service: authorizations and handled webhook events. */
import { isId } from "@shared/schemas/ids.ts";
import { advisoryXactLock, type Queryable, translateDbError, type Tx } from "@shared/db.ts";
import { ServiceUnavailableError } from "@shared/errors.ts";

/** An authorization as stored; the sealed columns are only ever opened by the handlers. */
export type AuthorizationRow = {
  id: string;
  event_id: string;
  stripe_publishable_key: string;
  access_token: Uint8Array;
  refresh_token: Uint8Array | null;
  stripe_user_id: Uint8Array;
  account_lookup: string;
  scope: string | null;
  livemode: boolean;
  /** Keyed digest of the code last exchanged for the row; null for rows linked before it. */
  code_digest: string | null;
  created_at: Date;
  updated_at: Date;
};

/** What a code exchange stores, already sealed. */
export interface SealedValues {
  stripe_publishable_key: string;
  access_token: Uint8Array;
  refresh_token: Uint8Array | null;
  stripe_user_id: Uint8Array;
  account_lookup: string;
  scope: string | null;
  livemode: boolean;
}

/** What a link or re-link writes: the sealed keys and the digest of the code it exchanged. */
export interface LinkValues extends SealedValues {
  code_digest: string;
}

const LINK_COLUMNS = [
  "stripe_publishable_key",
  "access_token",
  "refresh_token",
  "stripe_user_id",
  "account_lookup",
  "scope",
  "livemode",
  "code_digest",
] as const;

const CONFLICT = "Cannot link Stripe: the event already has a Stripe authorization";

function normalize(row: Record<string, unknown>): AuthorizationRow {
  return { ...row, id: String(row.id), event_id: String(row.event_id) } as AuthorizationRow;
}

export async function getAuthorization(
  sql: Queryable,
  id: string,
): Promise<AuthorizationRow | null> {
  if (!isId(id)) return null;
  const [row] = await sql`select * from stripe_authorizations where id = ${id}`;
  return row ? normalize(row) : null;
}

/** The newest authorization, or null when none is stored (the start's key check). */
export async function getNewestAuthorization(sql: Queryable): Promise<AuthorizationRow | null> {
  const [row] = await sql`select * from stripe_authorizations order by id desc limit 1`;
  return row ? normalize(row) : null;
}

export async function getAuthorizationOfEvent(
  sql: Queryable,
  eventId: string,
): Promise<AuthorizationRow | null> {
  if (!isId(eventId)) return null;
  const [row] = await sql`select * from stripe_authorizations where event_id = ${eventId}`;
  return row ? normalize(row) : null;
}

/** The authorizations of these events (at most one each), in one query. */
export async function getAuthorizationsOfEvents(
  sql: Queryable,
  eventIds: string[],
): Promise<AuthorizationRow[]> {
  const valid = eventIds.filter(isId);
  if (!valid.length) return [];
  const rows = await sql`select * from stripe_authorizations where event_id in ${sql(valid)}`;
  return rows.map(normalize);
}

export async function getAuthorizations(
  sql: Queryable,
  ids: string[],
): Promise<AuthorizationRow[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  const rows = await sql`select * from stripe_authorizations where id in ${sql(valid)}`;
  return rows.map(normalize);
}

export async function insertAuthorization(
  tx: Queryable,
  eventId: string,
  values: LinkValues,
): Promise<AuthorizationRow> {
  try {
    const row = { event_id: eventId, ...values };
    const [inserted] = await tx`insert into stripe_authorizations ${
      tx(row, "event_id", ...LINK_COLUMNS)
    } returning *`;
    return normalize(inserted);
  } catch (error) {
    throw translateDbError(error, { conflict: CONFLICT });
  }
}

/** Whether two reads of an authorization hold the same link (any write changes the sealed id). */
export function sameLink(a: AuthorizationRow, b: AuthorizationRow): boolean {
  return a.id === b.id && a.account_lookup === b.account_lookup &&
    a.stripe_user_id.length === b.stripe_user_id.length &&
    a.stripe_user_id.every((byte, i) => byte === b.stripe_user_id[i]);
}

/**
 * Replaces every key of `row` in one statement, only if the row still holds the account it was
 * read with (the sealed id changes on every write, so any change in between counts): of two
 * concurrent re-links only one wins. Null when the row changed or is gone.
 */
export async function replaceAuthorization(
  tx: Queryable,
  row: AuthorizationRow,
  values: LinkValues,
): Promise<AuthorizationRow | null> {
  const [updated] = await tx`update stripe_authorizations set ${tx(values, ...LINK_COLUMNS)},
    updated_at = now()
    where id = ${row.id} and account_lookup = ${row.account_lookup}
      and stripe_user_id = ${row.stripe_user_id}
    returning *`;
  return updated ? normalize(updated) : null;
}

/**
 * Deletes `row` only if it still holds the account it was read with (see
 * `replaceAuthorization`): a row re-linked meanwhile is not deleted blind. Null otherwise.
 */
export async function deleteAuthorization(
  tx: Queryable,
  row: Pick<AuthorizationRow, "id" | "account_lookup" | "stripe_user_id">,
): Promise<AuthorizationRow | null> {
  const [deleted] = await tx`delete from stripe_authorizations
    where id = ${row.id} and account_lookup = ${row.account_lookup}
      and stripe_user_id = ${row.stripe_user_id}
    returning *`;
  return deleted ? normalize(deleted) : null;
}

/**
 * Deletes the authorizations of an account; with `linkedBefore`, only those whose keys were
 * written before it (`updated_at` changes only when keys are: a link or a re-link); with
 * `livemode`, only those linked in that mode.
 */
export async function deleteAuthorizationsOfAccount(
  tx: Queryable,
  accountLookup: string,
  options: { linkedBefore?: Date; livemode?: boolean } = {},
): Promise<AuthorizationRow[]> {
  const before = options.linkedBefore ?? null;
  const livemode = options.livemode ?? null;
  const rows = await tx`delete from stripe_authorizations
    where account_lookup = ${accountLookup}
      and (${before}::timestamptz is null or updated_at < ${before}::timestamptz)
      and (${livemode}::boolean is null or livemode = ${livemode}::boolean)
    returning *`;
  return rows.map(normalize);
}

/** Whether any authorization (but `except`) uses the account: several events may share one. */
export async function accountInUse(
  sql: Queryable,
  accountLookup: string,
  options: { except?: string } = {},
): Promise<boolean> {
  const [row] = await sql`select exists (select 1 from stripe_authorizations
    where account_lookup = ${accountLookup} and id <> ${options.except ?? "0"}) as used`;
  return row.used;
}

/** Names the advisory lock of `lockAccounts` (`hashtext` of it is the key). */
export const ACCOUNTS_LOCK = "payments:stripe-accounts";

/** Another link or unlink held the accounts lock for longer than this one could wait. */
export class AccountsBusyError extends ServiceUnavailableError {
  constructor(options: { cause?: unknown } = {}) {
    super(
      "Cannot change the Stripe link now: another link or unlink is in progress; retry shortly",
      options,
    );
  }
}

/**
 * Takes the one lock every link and unlink of a Stripe account holds: the decision "does another
 * row use this account?", the Stripe call it leads to and the row's write happen under it, so they
 * never interleave (one account may serve several events). It is a transaction lock: released by
 * the commit or rollback that ends `tx`, by Postgres if the process dies, and by Postgres ending
 * the session once `tx` has sat idle for `holdMs` (a frozen or cut-off process, whose connection
 * TCP would only declare dead after hours). Waits at most `waitMs` for it (then
 * `AccountsBusyError`, 503): linking is rare, one at a time costs nothing. The later statements
 * of `tx` wait for their locks under the `lock_timeout` that was in force before.
 */
export async function lockAccounts(
  tx: Tx,
  options: { waitMs: number; holdMs: number },
): Promise<void> {
  // 0 would mean "wait forever" (and "no limit"): at least 1 ms, a try.
  const waitMs = String(Math.max(1, Math.floor(options.waitMs)));
  const holdMs = String(Math.max(1, Math.floor(options.holdMs)));
  // The setting in force before, read first (`offset 0` keeps the subquery from being merged
  // into the select list, whose order of evaluation Postgres does not promise).
  const [{ previous }] = await tx`select before.previous,
    set_config('lock_timeout', ${waitMs}, true),
    set_config('idle_in_transaction_session_timeout', ${holdMs}, true)
    from (select current_setting('lock_timeout') as previous offset 0) as before`;
  try {
    await advisoryXactLock(tx, ACCOUNTS_LOCK);
  } catch (error) {
    if ((error as { code?: string })?.code === "55P03") {
      throw new AccountsBusyError({ cause: error });
    }
    throw error;
  }
  // The short wait is for this lock only: the row locks of the write that follows wait as any
  // statement does (until the request's deadline), not `waitMs`, which failed them under load.
  await tx`select set_config('lock_timeout', ${previous}, true)`;
}

/**
 * How long a handled webhook event id is remembered. Stripe retries a delivery for up to 3 days
 * and a signature is only fresh for minutes, so an older id can no longer come back.
 */
const WEBHOOK_EVENT_RETENTION_DAYS = 30;

/**
 * Records a webhook event id; false when it was handled before (a replay). Forgets ids older
 * than `WEBHOOK_EVENT_RETENTION_DAYS` on the way, so the table does not grow forever.
 */
export async function recordWebhookEvent(
  tx: Queryable,
  id: string,
  type: string,
): Promise<boolean> {
  await tx`delete from stripe_webhook_events
    where received_at < now() - make_interval(days => ${WEBHOOK_EVENT_RETENTION_DAYS})`;
  const rows = await tx`insert into stripe_webhook_events (id, type) values (${id}, ${type})
    on conflict (id) do nothing returning id`;
  return rows.length === 1;
}
