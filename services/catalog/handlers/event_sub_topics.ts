/** Event sub-topics: public reads, admin writes; each belongs to one topic. One action per operation. */
import { UnprocessableError } from "@shared/errors.ts";
import {
  deletedReply,
  notFound,
  permanentDelete,
  renderLinkage,
  renderList,
  renderOne,
  requireAdmin,
  withTrashed,
} from "@shared/handlers/mod.ts";
import { type ParsedResource, parseResourceDocument, validateAttributes } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import { eventSubTopicAttributes } from "@shared/schemas/catalog.ts";
import type { CatalogContext } from "../context.ts";
import { eventSubTopicDef, eventSubTopicQuery, eventTopicDef } from "../resources.ts";
import { deleteTopic, getTopic, insertTopic, listTopics, updateTopic } from "../store/topics.ts";
import { type Call, commit, handleAll } from "./common.ts";
import { loadIncluded } from "./includes.ts";
import {
  renderEventLinkageUnder,
  renderEventsUnder,
  slugFor,
  topicOr404,
} from "./topics_common.ts";

const TABLE = "event_sub_topics";
const TOPIC_POINTER = { pointer: "/data/relationships/event-topic" };

/** The id of the topic the body's `event-topic` names; 422 when it names none that exists. */
async function topicIdOf(ctx: CatalogContext, doc: ParsedResource): Promise<string> {
  const ref = doc.relationships["event-topic"];
  const topic = ref && !Array.isArray(ref)
    ? await getTopic(ctx.sql, "event_topics", ref.id)
    : undefined;
  if (!topic) {
    throw new UnprocessableError(
      "Cannot save event sub-topic: the event topic does not exist",
      TOPIC_POINTER,
    );
  }
  return topic.id;
}

async function list(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const query = parseListQuery(call.req.query, eventSubTopicQuery);
  const result = await listTopics(ctx.sql, TABLE, query, {
    withTrashed: withTrashed(call.caller, query.extra),
  });
  const included = await loadIncluded(ctx, call.caller, "event-sub-topic", result.rows, query);
  return renderList(eventSubTopicDef, result, { req: call.req, query, included });
}

async function get(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const query = parseSingleQuery(call.req.query, eventSubTopicQuery);
  const row = await topicOr404(ctx, call, TABLE);
  const included = await loadIncluded(ctx, call.caller, "event-sub-topic", [row], query);
  return renderOne(eventSubTopicDef, row, { req: call.req, included, fields: query.fields });
}

async function create(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const doc = parseResourceDocument(call.req.body, {
    type: "event-sub-topic",
    relationships: eventSubTopicDef.relationships,
  });
  const attrs = validateAttributes(eventSubTopicAttributes, doc.attributes);
  const ref = doc.relationships["event-topic"];
  if (!ref || Array.isArray(ref)) {
    throw new UnprocessableError(
      "Cannot save event sub-topic: event-topic is required",
      TOPIC_POINTER,
    );
  }
  const topicId = await topicIdOf(ctx, doc);
  const row = await commit(
    ctx,
    call,
    { type: "event-sub-topic", verb: "created" },
    (tx) =>
      insertTopic(tx, TABLE, {
        name: attrs.name,
        slug: slugFor(attrs.name),
        event_topic_id: topicId,
      }),
  );
  return renderOne(eventSubTopicDef, row, { req: call.req, status: 201 });
}

async function update(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const existing = await topicOr404(ctx, call, TABLE);
  const doc = parseResourceDocument(call.req.body, {
    type: "event-sub-topic",
    id: call.req.params.id,
    relationships: eventSubTopicDef.relationships,
  });
  const attrs = validateAttributes(eventSubTopicAttributes.partial(), doc.attributes);
  const values: Record<string, string> = {};
  if (attrs.name !== undefined) {
    Object.assign(values, { name: attrs.name, slug: slugFor(attrs.name) });
  }
  if (doc.relationships["event-topic"] !== undefined) {
    values.event_topic_id = await topicIdOf(ctx, doc);
  }
  const row = await commit(
    ctx,
    call,
    { type: "event-sub-topic", verb: "updated", before: existing },
    (tx) => updateTopic(tx, TABLE, existing.id, values),
  );
  return renderOne(eventSubTopicDef, row, { req: call.req });
}

async function remove(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const existing = await topicOr404(ctx, call, TABLE);
  const permanent = permanentDelete(call.caller, call.req.query);
  await commit(
    ctx,
    call,
    { type: "event-sub-topic", verb: "deleted", row: existing },
    (tx) => deleteTopic(tx, TABLE, existing.id, permanent),
  );
  return deletedReply;
}

/** `/events` or `/event-topic` of a sub-topic. */
async function related(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const sub = await topicOr404(ctx, call, TABLE);
  if (call.req.params.rel === "events") {
    return await renderEventsUnder(ctx, call, { subTopicId: sub.id });
  }
  const topic = await getTopic(ctx.sql, "event_topics", sub.event_topic_id) ??
    notFound("event topic", sub.event_topic_id);
  return renderOne(eventTopicDef, topic, { req: call.req });
}

async function relationship(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const sub = await topicOr404(ctx, call, TABLE);
  if (call.req.params.rel === "events") {
    return await renderEventLinkageUnder(ctx, call, {
      scope: { subTopicId: sub.id },
      parent: eventSubTopicDef,
    });
  }
  const topic = await getTopic(ctx.sql, "event_topics", sub.event_topic_id);
  return renderLinkage(eventTopicDef, topic ?? null, { req: call.req, parent: eventSubTopicDef });
}

export function eventSubTopicHandlers(ctx: CatalogContext) {
  return handleAll(ctx, {
    "event-sub-topics.list": list,
    "event-sub-topics.get": get,
    "event-sub-topics.create": create,
    "event-sub-topics.update": update,
    "event-sub-topics.delete": remove,
    "event-sub-topics.related": related,
    "event-sub-topics.relationship": relationship,
  });
}
