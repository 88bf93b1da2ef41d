/** All SQL about event topics and sub-topics. */
import { isId } from "@shared/schemas/ids.ts";
import type { Queryable } from "@shared/db.ts";
import { translateDbError } from "@shared/db.ts";
import type { ListQuery } from "@shared/query.ts";
import { deleteRow, type Fragment, listRows, liveRows } from "./common.ts";
import type { EventRow, SubTopicRow, TopicRow } from "./rows.ts";

export type TopicTable = "event_topics" | "event_sub_topics";
/** The row of a topic table. */
export type TopicRowOf<T extends TopicTable> = T extends "event_topics" ? TopicRow : SubTopicRow;

/** A slug is made from the name: a taken slug is a taken name. */
const NAME = "/data/attributes/name";
const conflicts: Record<TopicTable, string> = {
  event_topics: "Cannot save event topic: a topic with this name (slug) already exists",
  event_sub_topics: "Cannot save event sub-topic: this topic already has one with this name (slug)",
};

export async function getTopic<T extends TopicTable>(
  sql: Queryable,
  of: T,
  id: string,
  withTrashed = false,
): Promise<TopicRowOf<T> | undefined> {
  const table: TopicTable = of;
  if (!isId(id)) return undefined;
  const [row] = await sql`select * from ${sql(table)} where id = ${id} and ${
    liveRows(sql, table, withTrashed)
  }`;
  return row as TopicRowOf<T> | undefined;
}

export async function getTopics<T extends TopicTable>(
  sql: Queryable,
  of: T,
  ids: string[],
  { withTrashed = false }: { withTrashed?: boolean } = {},
): Promise<TopicRowOf<T>[]> {
  const table: TopicTable = of;
  const valid = ids.filter(isId);
  if (!valid.length) return [];
  return await sql`select * from ${sql(table)} where id in ${sql(valid)}
    and ${liveRows(sql, table, withTrashed)}`;
}

export function listTopics<T extends TopicTable>(
  sql: Queryable,
  table: T,
  query: ListQuery,
  options: { withTrashed?: boolean; topicId?: string } = {},
) {
  const live = liveRows(sql, table, !!options.withTrashed);
  const where = options.topicId ? sql`${live} and event_topic_id = ${options.topicId}` : live;
  return listRows<TopicRowOf<T>>(sql, table, where, query);
}

/** Live sub-topics (trashed ones too, `withTrashed`) of several topics (`include=event-sub-topics`). */
export async function subTopicsOf(
  sql: Queryable,
  topicIds: string[],
  { withTrashed = false }: { withTrashed?: boolean } = {},
): Promise<SubTopicRow[]> {
  const valid = topicIds.filter(isId);
  if (!valid.length) return [];
  return await sql<SubTopicRow[]>`select * from event_sub_topics
    where event_topic_id in ${sql(valid)} and ${liveRows(sql, "event_sub_topics", withTrashed)}
    order by id`;
}

export interface TopicValues {
  name?: string;
  slug?: string;
  system_image_url?: string | null;
  event_topic_id?: string;
  /** Only ever null: an admin restores a soft-deleted topic (handlers/event_topics.ts). */
  deleted_at?: null;
}

export async function insertTopic<T extends TopicTable>(
  tx: Queryable,
  of: T,
  values: TopicValues,
): Promise<TopicRowOf<T>> {
  const table: TopicTable = of;
  try {
    const [row] = await tx`insert into ${tx(table)} ${
      tx(values, ...Object.keys(values) as (keyof TopicValues)[])
    } returning *`;
    return row as TopicRowOf<T>;
  } catch (error) {
    throw translateDbError(error, { conflict: conflicts[table], pointer: NAME });
  }
}

export async function updateTopic<T extends TopicTable>(
  tx: Queryable,
  of: T,
  id: string,
  values: TopicValues,
): Promise<TopicRowOf<T>> {
  const table: TopicTable = of;
  const keys = Object.keys(values) as (keyof TopicValues)[];
  try {
    const [row] = keys.length
      ? await tx`update ${tx(table)} set ${tx(values, ...keys)} where id = ${id} returning *`
      : await tx`select * from ${tx(table)} where id = ${id}`;
    return row as TopicRowOf<T>;
  } catch (error) {
    throw translateDbError(error, { conflict: conflicts[table], pointer: NAME });
  }
}

export function deleteTopic<T extends TopicTable>(
  tx: Queryable,
  table: T,
  id: string,
  permanent: boolean,
) {
  return deleteRow<TopicRowOf<T>>(tx, table, id, permanent);
}

/**
 * Live topic or sub-topic `id`, locked against a concurrent delete or move until the transaction
 * ends: an event linked to it meanwhile waits, then sees it trashed (undefined) or moved.
 */
export async function lockLiveTopic<T extends TopicTable>(
  tx: Queryable,
  of: T,
  id: string,
): Promise<TopicRowOf<T> | undefined> {
  const table: TopicTable = of;
  if (!isId(id)) return undefined;
  const [row] = await tx`select * from ${tx(table)} where id = ${id} and deleted_at is null
    for share`;
  return row as TopicRowOf<T> | undefined;
}

/** An event a write unlinked: as it was (locked) and as it is now. */
export interface UnlinkedEvent {
  before: EventRow;
  row: EventRow;
}

/** What deleting a topic or sub-topic changed beyond its own row. */
export interface Dependents {
  /** A topic's sub-topics, deleted with it (soft-deleted with a soft delete). */
  subTopics: SubTopicRow[];
  /** Events that linked to it (or to one of those sub-topics): unlinked. */
  events: UnlinkedEvent[];
}

/** `after` (an update's returned rows) each beside its row in `before` (the locked rows). */
function unlinked(before: EventRow[], after: EventRow[]): UnlinkedEvent[] {
  const locked = new Map(before.map((row) => [String(row.id), row]));
  return after.map((row) => ({ before: locked.get(String(row.id)) ?? row, row }));
}

/**
 * Unlinks every event (trashed ones too: a restored event must not point at a deleted topic)
 * from topic or sub-topic `id`, and from a topic's sub-topics; the events, as they were and are.
 * The row is locked first: an event linked to it meanwhile waits, then fails or sees it deleted,
 * instead of keeping a link nobody announced the end of.
 */
async function unlinkEvents(
  tx: Queryable,
  table: TopicTable,
  id: string,
): Promise<UnlinkedEvent[]> {
  await tx`select id from ${tx(table)} where id = ${id} for update`;
  if (table === "event_sub_topics") {
    const before = await lockEventsInOrder(tx, tx`event_sub_topic_id = ${id}`);
    return unlinked(
      before,
      await tx<EventRow[]>`update events set event_sub_topic_id = null
        where event_sub_topic_id = ${id} returning *`,
    );
  }
  const linked = tx`event_topic_id = ${id} or event_sub_topic_id in (
    select id from event_sub_topics where event_topic_id = ${id})`;
  const before = await lockEventsInOrder(tx, linked);
  return unlinked(
    before,
    await tx<EventRow[]>`update events set
        event_topic_id = nullif(event_topic_id, ${id}),
        event_sub_topic_id = case when event_sub_topic_id in (
          select id from event_sub_topics where event_topic_id = ${id}
        ) then null else event_sub_topic_id end
      where ${linked}
      returning *`,
  );
}

/**
 * Locks the events `where` matches in id order, as a user's deletion locks theirs
 * (`lockForUserDelete`): an update taking them in the order it meets them (an event updated since
 * sits after newer ones) deadlocked with such a deletion, and one of the two answered 503. Returns
 * them as they were, for the facts to name what the update then changed.
 */
async function lockEventsInOrder(tx: Queryable, where: Fragment): Promise<EventRow[]> {
  return await tx<EventRow[]>`select * from events where ${where} order by id for update`;
}

/**
 * Before a permanent delete of topic or sub-topic `id`: does what the schema's cascades would do
 * silently (a topic's sub-topics deleted, events' links to either cleared) and returns those
 * rows, so that each change can have its fact and leave no cache stale.
 */
export async function purgeTopicDependents(
  tx: Queryable,
  table: TopicTable,
  id: string,
): Promise<Dependents> {
  const events = await unlinkEvents(tx, table, id);
  if (table === "event_sub_topics") return { subTopics: [], events };
  const subTopics = await tx<SubTopicRow[]>`delete from event_sub_topics
    where event_topic_id = ${id} returning *`;
  return { subTopics, events };
}

/**
 * Before a soft delete of topic or sub-topic `id`: its events are unlinked (a trashed topic is
 * hidden, so a link to it could be neither included nor followed nor saved back), and a topic's
 * live sub-topics are soft-deleted with it (they would belong to a trashed topic).
 */
export async function trashTopicDependents(
  tx: Queryable,
  table: TopicTable,
  id: string,
): Promise<Dependents> {
  if (table === "event_sub_topics") {
    return { subTopics: [], events: await unlinkEvents(tx, table, id) };
  }
  await tx`select id from event_topics where id = ${id} for update`;
  // Sub-topics first: an event being linked to one holds it, and is unlinked below once it ends.
  const subTopics = await tx<SubTopicRow[]>`update event_sub_topics set deleted_at = now()
    where event_topic_id = ${id} and deleted_at is null returning *`;
  return { subTopics, events: await unlinkEvents(tx, table, id) };
}

/**
 * Before trashed topic `id` is restored: brings back the sub-topics its deletion trashed along
 * (`trashTopicDependents`, in the deletion's transaction, so at the very instant the topic was:
 * one deleted before stays in the trash); the rows as they are now. None for a live topic.
 */
export async function restoreTrashedAlong(tx: Queryable, id: string): Promise<SubTopicRow[]> {
  try {
    return await tx<SubTopicRow[]>`update event_sub_topics set deleted_at = null
      where event_topic_id = ${id}
        and deleted_at = (select deleted_at from event_topics where id = ${id})
      returning *`;
  } catch (error) {
    // Two renamed in the trash to one slug: only one may be live.
    throw translateDbError(error, {
      conflict: "Cannot restore event topic: two of its sub-topics trashed with it now have " +
        "the same name (slug); rename one first",
      pointer: "/data/attributes/deleted-at",
    });
  }
}

/**
 * After sub-topic `id` moved to topic `topicId`: unlinks it from the events of another topic
 * (the pair no longer fits); those events, as they were and are.
 */
export async function unlinkMovedSubTopic(
  tx: Queryable,
  id: string,
  topicId: string,
): Promise<UnlinkedEvent[]> {
  const unfit = tx`event_sub_topic_id = ${id} and event_topic_id is distinct from ${topicId}`;
  const before = await lockEventsInOrder(tx, unfit);
  return unlinked(
    before,
    await tx<EventRow[]>`update events set event_sub_topic_id = null where ${unfit}
      returning *`,
  );
}
