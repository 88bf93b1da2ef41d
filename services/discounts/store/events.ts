/**
 * The discounts service's projection of the catalog's events (id, identifier, state, deleted),
 * fed by the catalog's event facts. Only the anonymous checkout lookup reads it; every route
 * that checks roles asks the catalog live.
 */
import { isId } from "@shared/schemas/ids.ts";
import type { Queryable } from "@shared/db.ts";
import type { CodeRow } from "./codes.ts";

export interface ProjectedEvent {
  id: string;
  identifier: string;
  state: string;
  deleted: boolean;
}

/**
 * Records what a catalog fact says of an event. Idempotent and order-proof: a fact older than
 * the stored one changes nothing. A later one says whether it is deleted: a restored event is
 * served from the projection again (until 2026-12-03 `deleted` never went back to false, and
 * every lookup of a restored event asked the catalog). A fact of the same millisecond as the
 * stored one may be the older of the two (its acknowledgement lost, it comes again after the
 * deletion or the unpublishing that followed it): it moves the row only towards asking the
 * catalog, never back to live or published (found by a review: such a redelivery made a deleted
 * event live, and a draft one published, in the projection until the event's next fact).
 */
export async function projectEvent(
  sql: Queryable,
  event: ProjectedEvent,
  changedAt: Date,
): Promise<void> {
  if (!isId(event.id)) return;
  await sql`insert into catalog_events (id, identifier, state, deleted, changed_at)
    values (${event.id}, ${event.identifier}, ${event.state}, ${event.deleted}, ${changedAt})
    on conflict (id) do update set
      identifier = excluded.identifier,
      state = case
        when catalog_events.changed_at = excluded.changed_at and excluded.state = 'published'
        then catalog_events.state else excluded.state end,
      deleted = case
        when catalog_events.changed_at = excluded.changed_at
        then catalog_events.deleted or excluded.deleted else excluded.deleted end,
      changed_at = excluded.changed_at
    where catalog_events.changed_at <= excluded.changed_at`;
}

/**
 * Records a published event the catalog itself just answered for (the facts have not brought
 * it yet, or it predates the projection). Any fact, even an older one, overrides this row.
 */
export async function rememberEvent(
  sql: Queryable,
  event: { id: string; identifier: string; state: string },
): Promise<void> {
  if (!isId(event.id)) return;
  await sql`insert into catalog_events (id, identifier, state, deleted, changed_at)
    values (${event.id}, ${event.identifier}, ${event.state}, false, '-infinity')
    on conflict (id) do nothing`;
}

/**
 * The checkout lookup in one statement: the projected event `key` (id or identifier) and, when
 * it is published and live, its live ticket code whose text is `code` (case-insensitively).
 * Undefined when the projection does not know the event as published: ask the catalog then.
 */
export async function lookupProjected(
  sql: Queryable,
  key: string,
  code: string,
): Promise<{ eventId: string; code: CodeRow | undefined } | undefined> {
  const match = isId(key)
    ? sql`e.id = ${key}`
    : /^[0-9a-f]{8}$/.test(key)
    ? sql`e.identifier = ${key}`
    : undefined;
  if (!match) return undefined;
  // The code's columns are all null when the event has no such code (left join).
  const [row] = await sql<(CodeRow & { projected_event_id: string })[]>`select
    e.id::text as projected_event_id, c.*
    from catalog_events e
    left join code_rows c on c.event_id = e.id and lower(c.code) = lower(${code})
      and c.deleted_at is null
    where ${match} and e.state = 'published' and not e.deleted
    order by e.changed_at desc limit 1`;
  if (!row) return undefined;
  const { projected_event_id: eventId, ...rest } = row;
  return { eventId: String(eventId), code: rest.id === null ? undefined : rest };
}

/**
 * Whether the projection holds the event live as of a fact later than `at`: an event deleted at
 * `at` and restored since. A replayed deletion (a follower rebuilt from the stream, a consumer
 * made anew from a backup's time) must then leave what was made after the restore.
 */
export async function liveSince(sql: Queryable, eventId: string, at: Date): Promise<boolean> {
  const [row] = await sql`select 1 from catalog_events
    where id = ${eventId} and not deleted and changed_at > ${at}`;
  return row !== undefined;
}
