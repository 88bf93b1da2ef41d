/** Event sub-topics: public reads, admin writes; each belongs to one topic. One action per operation. */
import { ConflictError, UnprocessableError } from "@shared/errors.ts";
import { notFound, requireAdmin, withTrashed } from "@shared/handlers/mod.ts";
import { type ParsedResource, parseResourceDocument, validateAttributes } from "@shared/jsonapi.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import { eventSubTopicAttributes } from "@shared/schemas/catalog.ts";
import type { Queryable } from "@shared/db.ts";
import type { SubTopicRow } from "../store/rows.ts";
import type { CatalogContext } from "../context.ts";
import { eventSubTopicDef, eventSubTopicQuery, eventTopicDef } from "../resources.ts";
import { parseSingleQuery } from "@shared/query.ts";
import { renderLinkageShown, renderWritten } from "./includes.ts";
import {
  getTopic,
  insertTopic,
  lockLiveTopic,
  type TopicValues,
  unlinkMovedSubTopic,
  updateTopic,
} from "../store/topics.ts";
import {
  type Call,
  cascadeUnlinked,
  commit,
  commitWithCascade,
  handleAll,
  restores,
} from "./common.ts";
import { renderRelatedOne } from "./related.ts";
import {
  deleteAction,
  getAction,
  listAction,
  renderEventLinkageUnder,
  renderEventsUnder,
  slugFor,
  topicOr404,
} from "./topics_common.ts";

const TABLE = "event_sub_topics";
const TOPIC_POINTER = { pointer: "/data/relationships/event-topic" };
/**
 * What a body may set: its topic. `events` change through the events (422 here, as on a topic;
 * it used to be read and dropped); names the resource does not have, such as the
 * `custom-placeholder` open-event-frontend's model sends on every save, are ignored.
 */
const WRITABLE = { "event-topic": eventSubTopicDef.relationships!["event-topic"] };

/**
 * The id of the topic the body's `event-topic` names, locked until the write ends (a topic
 * trashed meanwhile takes the sub-topic along, or is seen trashed); 422 when none is live.
 */
async function topicIdOf(tx: Queryable, doc: ParsedResource): Promise<string> {
  const ref = doc.relationships["event-topic"];
  const topic = ref && !Array.isArray(ref)
    ? await lockLiveTopic(tx, "event_topics", ref.id)
    : undefined;
  if (!topic) {
    throw new UnprocessableError(
      "Cannot save event sub-topic: the event topic does not exist",
      TOPIC_POINTER,
    );
  }
  return topic.id;
}

async function create(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const query = parseSingleQuery(call.req.query, eventSubTopicQuery);
  const doc = parseResourceDocument(call.req.body, {
    type: "event-sub-topic",
    relationships: WRITABLE,
    known: eventSubTopicDef.relationships,
  });
  const attrs = validateAttributes(eventSubTopicAttributes, doc.attributes);
  const ref = doc.relationships["event-topic"];
  if (!ref || Array.isArray(ref)) {
    throw new UnprocessableError(
      "Cannot save event sub-topic: event-topic is required",
      TOPIC_POINTER,
    );
  }
  const slug = slugFor(attrs.name);
  const row = await commit(
    ctx,
    call,
    { type: "event-sub-topic", verb: "created" },
    async (tx) =>
      insertTopic(tx, TABLE, { name: attrs.name, slug, event_topic_id: await topicIdOf(tx, doc) }),
  );
  return await renderWritten(ctx, call.caller, eventSubTopicDef, row, query, {
    req: call.req,
    status: 201,
  });
}

/**
 * The topic a sub-topic being restored will belong to, locked as `topicIdOf` locks it: a
 * restored sub-topic of a trashed topic would be a live row nothing shows, so that is a 409
 * until the topic is restored or the sub-topic moves to a live one in the same PATCH.
 */
async function liveTopicForRestore(tx: Queryable, topicId: string): Promise<void> {
  if (await lockLiveTopic(tx, "event_topics", topicId)) return;
  throw new ConflictError(
    "Cannot restore event sub-topic: its event topic is in the trash; restore the topic " +
      "first, or send a live event-topic with the restore",
    TOPIC_POINTER,
  );
}

/**
 * A sub-topic moved to another topic leaves the events of its old topic (their pair would no
 * longer fit): each is announced (`event.updated`) before the sub-topic itself.
 */
async function update(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const existing = await topicOr404(ctx, call, TABLE);
  const query = parseSingleQuery(call.req.query, eventSubTopicQuery);
  const doc = parseResourceDocument(call.req.body, {
    type: "event-sub-topic",
    id: call.req.params.id,
    relationships: WRITABLE,
    known: eventSubTopicDef.relationships,
  });
  const attrs = validateAttributes(eventSubTopicAttributes.partial(), doc.attributes);
  const values: TopicValues = {};
  if (attrs.name !== undefined) {
    Object.assign(values, { name: attrs.name, slug: slugFor(attrs.name) });
  }
  const moves = doc.relationships["event-topic"] !== undefined;
  const restoring = restores(call.caller, existing, doc.attributes);
  const { row, cascaded } = await commitWithCascade(
    ctx,
    call,
    {
      type: "event-sub-topic",
      verb: "updated",
      row: existing,
      update: { table: TABLE, id: existing.id, foundLive: existing.deleted_at === null },
      // The topic before the sub-topic, as a topic's deletion and restore lock them: the other
      // way round, a PATCH sending back its topic met the topic's deletion in a deadlock (a 500).
      lockFirst: async (tx) => {
        if (moves) values.event_topic_id = await topicIdOf(tx, doc);
        if (restoring) {
          await liveTopicForRestore(tx, values.event_topic_id ?? existing.event_topic_id);
          values.deleted_at = null;
        }
      },
    },
    async (tx) => {
      const row = await updateTopic(tx, TABLE, existing.id, values);
      // The topic checked live above was the one read before the lock: moved meanwhile (a
      // trashed row can still change), the restore would leave it live under another, unchecked.
      if (restoring && !moves && row && row.event_topic_id !== existing.event_topic_id) {
        throw new ConflictError(
          "Cannot restore event sub-topic: it moved to another event topic meanwhile; try again",
          TOPIC_POINTER,
        );
      }
      const events = row ? await unlinkMovedSubTopic(tx, row.id, row.event_topic_id) : [];
      return { row, cascaded: cascadeUnlinked(events) };
    },
  );
  const shown = await renderWritten(ctx, call.caller, eventSubTopicDef, row, query, {
    req: call.req,
  });
  return { ...shown, cascaded };
}

/**
 * The topic of `sub`: a trashed one too for an admin asking `?get_trashed=true` (who reaches a
 * sub-topic trashed with its topic that way, and sees its linkage name that topic).
 */
function topicOf(ctx: CatalogContext, call: Call, sub: SubTopicRow) {
  const trashed = withTrashed(call.caller, call.req.query);
  return getTopic(ctx.sql, "event_topics", sub.event_topic_id, trashed);
}

/** `/events` or `/event-topic` of a sub-topic. */
async function related(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const sub = await topicOr404(ctx, call, TABLE);
  if (call.req.params.rel === "events") {
    return await renderEventsUnder(ctx, call, { subTopicId: sub.id });
  }
  const topic = await topicOf(ctx, call, sub) ?? notFound("event topic", sub.event_topic_id);
  return await renderRelatedOne(ctx, call, eventTopicDef, topic);
}

async function relationship(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const sub = await topicOr404(ctx, call, TABLE);
  if (call.req.params.rel === "events") {
    return await renderEventLinkageUnder(ctx, call, {
      scope: { subTopicId: sub.id },
      parent: { def: eventSubTopicDef, row: sub },
    });
  }
  const topic = await topicOf(ctx, call, sub);
  const parent = { def: eventSubTopicDef, row: sub };
  const trashed = withTrashed(call.caller, call.req.query);
  const related = { def: eventTopicDef, rows: topic ?? null, trashed };
  return await renderLinkageShown(ctx, call.caller, parent, related, call.req);
}

export function eventSubTopicHandlers(ctx: CatalogContext) {
  return handleAll(ctx, {
    "event-sub-topics.list": listAction(TABLE),
    "event-sub-topics.get": getAction(TABLE),
    "event-sub-topics.create": create,
    "event-sub-topics.update": update,
    "event-sub-topics.delete": deleteAction(TABLE),
    "event-sub-topics.related": related,
    "event-sub-topics.relationship": relationship,
  });
}
