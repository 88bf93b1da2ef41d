/** All SQL of the payments service: authorizations and handled webhook events. */
import { type Sql, translateDbError } from "@shared/db.ts";

// deno-lint-ignore no-explicit-any
type Tx = Sql | any;

/** An authorization as stored; the sealed columns are only ever opened by the handlers. */
export interface AuthorizationRow {
  id: string;
  event_id: string;
  stripe_publishable_key: string;
  access_token: Uint8Array;
  refresh_token: Uint8Array | null;
  stripe_user_id: Uint8Array;
  account_lookup: string;
  scope: string | null;
  livemode: boolean;
  created_at: Date;
  updated_at: Date;
}

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

const SEALED_COLUMNS = [
  "stripe_publishable_key",
  "access_token",
  "refresh_token",
  "stripe_user_id",
  "account_lookup",
  "scope",
  "livemode",
] as const;

const CONFLICT = "Cannot link Stripe: the event already has a Stripe authorization";

/** Ids are bigints: anything else cannot name a row (and must not reach a cast). */
export function isId(value: string | undefined): value is string {
  return !!value && /^[1-9]\d{0,17}$/.test(value);
}

function normalize(row: Record<string, unknown>): AuthorizationRow {
  return { ...row, id: String(row.id), event_id: String(row.event_id) } as AuthorizationRow;
}

export async function getAuthorization(sql: Tx, id: string): Promise<AuthorizationRow | null> {
  if (!isId(id)) return null;
  const [row] = await sql`select * from stripe_authorizations where id = ${id}`;
  return row ? normalize(row) : null;
}

export async function getAuthorizationOfEvent(
  sql: Tx,
  eventId: string,
): Promise<AuthorizationRow | null> {
  if (!isId(eventId)) return null;
  const [row] = await sql`select * from stripe_authorizations where event_id = ${eventId}`;
  return row ? normalize(row) : null;
}

export async function getAuthorizations(sql: Tx, ids: string[]): Promise<AuthorizationRow[]> {
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  const rows = await sql`select * from stripe_authorizations where id in ${sql(valid)}`;
  return rows.map(normalize);
}

export async function insertAuthorization(
  tx: Tx,
  eventId: string,
  values: SealedValues,
): Promise<AuthorizationRow> {
  try {
    const row = { event_id: eventId, ...values };
    const [inserted] = await tx`insert into stripe_authorizations ${
      tx(row, "event_id", ...SEALED_COLUMNS)
    } returning *`;
    return normalize(inserted);
  } catch (error) {
    throw translateDbError(error, { conflict: CONFLICT });
  }
}

/** Replaces every key of one authorization in one statement; null when the row is gone. */
export async function replaceAuthorization(
  tx: Tx,
  id: string,
  values: SealedValues,
): Promise<AuthorizationRow | null> {
  const [row] = await tx`update stripe_authorizations set ${tx(values, ...SEALED_COLUMNS)},
    updated_at = now() where id = ${id} returning *`;
  return row ? normalize(row) : null;
}

export async function deleteAuthorization(tx: Tx, id: string): Promise<AuthorizationRow | null> {
  const [row] = await tx`delete from stripe_authorizations where id = ${id} returning *`;
  return row ? normalize(row) : null;
}

export async function deleteAuthorizationsOfAccount(
  tx: Tx,
  accountLookup: string,
): Promise<AuthorizationRow[]> {
  const rows = await tx`delete from stripe_authorizations
    where account_lookup = ${accountLookup} returning *`;
  return rows.map(normalize);
}

/** Whether any authorization (but `except`) uses the account: several events may share one. */
export async function accountInUse(
  sql: Tx,
  accountLookup: string,
  options: { except?: string } = {},
): Promise<boolean> {
  const [row] = await sql`select exists (select 1 from stripe_authorizations
    where account_lookup = ${accountLookup} and id <> ${options.except ?? "0"}) as used`;
  return row.used;
}

/** Records a webhook event id; false when it was handled before (a replay). */
export async function recordWebhookEvent(tx: Tx, id: string, type: string): Promise<boolean> {
  const rows = await tx`insert into stripe_webhook_events (id, type) values (${id}, ${type})
    on conflict (id) do nothing returning id`;
  return rows.length === 1;
}
