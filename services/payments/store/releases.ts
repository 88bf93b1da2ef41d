/**
 * The queue of Stripe accounts to disconnect once no authorization uses them
 * (`stripe_account_releases`): queued with the change that frees one, taken one at a time by
 * whichever payments instance gets to it first, postponed with a growing wait while it fails.
 */
import type { Queryable } from "@shared/db.ts";

export interface ReleaseRow {
  id: string;
  account_lookup: string;
  stripe_user_id: Uint8Array;
  attempts: number;
}

/** The longest wait between two tries of one release. */
const MAX_BACKOFF_S = 3600;

/** Queues a release, due now or `delayMs` from now; its id. */
export async function insertRelease(
  sql: Queryable,
  values: { account_lookup: string; stripe_user_id: Uint8Array },
  delayMs = 0,
): Promise<string> {
  const [row] = await sql`insert into stripe_account_releases
    (account_lookup, stripe_user_id, not_before)
    values (${values.account_lookup}, ${values.stripe_user_id},
      now() + make_interval(secs => ${delayMs / 1000}))
    returning id`;
  return String(row.id);
}

/** The ids of releases due now, oldest first. */
export async function dueReleases(sql: Queryable, limit: number): Promise<string[]> {
  const rows = await sql`select id from stripe_account_releases where not_before <= now()
    order by id limit ${limit}`;
  return rows.map((row) => String(row.id));
}

/** Release `id`, locked until `tx` ends, unless another instance holds it or it is not due. */
export async function claimRelease(tx: Queryable, id: string): Promise<ReleaseRow | undefined> {
  const [row] = await tx`select * from stripe_account_releases
    where id = ${id} and not_before <= now() for update skip locked`;
  return row && { ...row, id: String(row.id) } as ReleaseRow;
}

export async function deleteRelease(tx: Queryable, id: string): Promise<void> {
  await tx`delete from stripe_account_releases where id = ${id}`;
}

/** Makes release `id` due now (its link was rolled back: nothing keeps it waiting). */
export async function releaseNow(sql: Queryable, id: string): Promise<void> {
  await sql`update stripe_account_releases set not_before = now() where id = ${id}`;
}

/** One more failed try: the next waits twice as long as the last (at most an hour). */
export async function postponeRelease(sql: Queryable, id: string): Promise<void> {
  await sql`update stripe_account_releases set attempts = attempts + 1,
    not_before = now() + make_interval(secs => least(power(2, attempts + 1), ${MAX_BACKOFF_S}))
    where id = ${id}`;
}

/** How many releases wait (due or not): for tests and operators. */
export async function pendingReleases(sql: Queryable): Promise<number> {
  const [row] = await sql`select count(*)::int as count from stripe_account_releases`;
  return row.count;
}
