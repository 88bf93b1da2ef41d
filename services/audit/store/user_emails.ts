/** All SQL about the addresses audit keeps of users (migrations/0002_user_emails.sql). */
import type { Queryable } from "@shared/db.ts";

/** A user's address as of the fact that said it; `email` null once the user was purged. */
export interface UserEmailRow {
  user_id: string;
  email: string | null;
  as_of: Date;
}

/** What audit knows of `ids` (users it never learnt of are missing). */
export async function loadUserEmails(sql: Queryable, ids: string[]): Promise<UserEmailRow[]> {
  if (!ids.length) return [];
  return await sql<UserEmailRow[]>`select user_id, email, as_of from user_emails
    where user_id in ${sql(ids)}`;
}

/**
 * Keeps each row (one per user) unless a newer fact already set that user's: batches handled
 * out of order (a redelivery, another instance) never bring back an older address.
 */
export async function saveUserEmails(sql: Queryable, rows: UserEmailRow[]): Promise<void> {
  if (!rows.length) return;
  // One order for every writer: two batches naming the same users cannot deadlock.
  const sorted = rows.toSorted((a, b) => a.user_id < b.user_id ? -1 : 1);
  await sql`insert into user_emails ${sql(sorted, "user_id", "email", "as_of")}
    on conflict (user_id) do update set email = excluded.email, as_of = excluded.as_of
    where user_emails.as_of <= excluded.as_of`;
}
