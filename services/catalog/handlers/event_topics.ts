/** Event topics: public reads, admin writes, slugs from names. One action per operation. */
import {
  deletedReply,
  permanentDelete,
  renderLinkage,
  renderList,
  renderOne,
  requireAdmin,
  withTrashed,
} from "@shared/handlers/mod.ts";
import { parseResourceDocument, validateAttributes } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import { eventTopicAttributes } from "@shared/schemas/catalog.ts";
import type { CatalogContext } from "../context.ts";
import {
  eventQuery,
  eventSubTopicDef,
  eventSubTopicQuery,
  eventTopicDef,
  eventTopicQuery,
} from "../resources.ts";
import { deleteTopic, insertTopic, listTopics, updateTopic } from "../store/topics.ts";
import { type Call, commit, handleAll } from "./common.ts";
import { loadIncluded } from "./includes.ts";
import {
  renderEventLinkageUnder,
  renderEventsUnder,
  slugFor,
  topicOr404,
} from "./topics_common.ts";

const TABLE = "event_topics";

async function list(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const query = parseListQuery(call.req.query, eventTopicQuery);
  const result = await listTopics(ctx.sql, TABLE, query, {
    withTrashed: withTrashed(call.caller, query.extra),
  });
  const included = await loadIncluded(ctx, call.caller, "event-topic", result.rows, query);
  return renderList(eventTopicDef, result, { req: call.req, query, included });
}

async function get(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const query = parseSingleQuery(call.req.query, eventTopicQuery);
  const row = await topicOr404(ctx, call, TABLE);
  const included = await loadIncluded(ctx, call.caller, "event-topic", [row], query);
  return renderOne(eventTopicDef, row, { req: call.req, included, fields: query.fields });
}

async function create(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const doc = parseResourceDocument(call.req.body, { type: "event-topic" });
  const attrs = validateAttributes(eventTopicAttributes, doc.attributes);
  const row = await commit(
    ctx,
    call,
    { type: "event-topic", verb: "created" },
    (tx) =>
      insertTopic(tx, TABLE, {
        name: attrs.name,
        slug: slugFor(attrs.name),
        system_image_url: attrs["system-image-url"] ?? null,
      }),
  );
  return renderOne(eventTopicDef, row, { req: call.req, status: 201 });
}

async function update(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const existing = await topicOr404(ctx, call, TABLE);
  const doc = parseResourceDocument(call.req.body, { type: "event-topic", id: call.req.params.id });
  const attrs = validateAttributes(eventTopicAttributes.partial(), doc.attributes);
  const values = {
    ...(attrs.name !== undefined && { name: attrs.name, slug: slugFor(attrs.name) }),
    ...("system-image-url" in attrs && { system_image_url: attrs["system-image-url"] ?? null }),
  };
  const row = await commit(
    ctx,
    call,
    { type: "event-topic", verb: "updated", before: existing },
    (tx) => updateTopic(tx, TABLE, existing.id, values),
  );
  return renderOne(eventTopicDef, row, { req: call.req });
}

async function remove(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const existing = await topicOr404(ctx, call, TABLE);
  const permanent = permanentDelete(call.caller, call.req.query);
  await commit(
    ctx,
    call,
    { type: "event-topic", verb: "deleted", row: existing },
    (tx) => deleteTopic(tx, TABLE, existing.id, permanent),
  );
  return deletedReply;
}

/** `/events` or `/event-sub-topics` of a topic. */
async function related(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const topic = await topicOr404(ctx, call, TABLE);
  if (call.req.params.rel === "events") {
    return await renderEventsUnder(ctx, call, { topicId: topic.id });
  }
  const query = parseListQuery(call.req.query, eventSubTopicQuery);
  const result = await listTopics(ctx.sql, "event_sub_topics", query, { topicId: topic.id });
  return renderList(eventSubTopicDef, result, { req: call.req, query });
}

async function relationship(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const topic = await topicOr404(ctx, call, TABLE);
  if (call.req.params.rel === "events") {
    return await renderEventLinkageUnder(ctx, call, {
      scope: { topicId: topic.id },
      parent: eventTopicDef,
    });
  }
  const all = parseListQuery({ "page[size]": "0" }, eventQuery);
  const { rows } = await listTopics(ctx.sql, "event_sub_topics", all, { topicId: topic.id });
  return renderLinkage(eventSubTopicDef, rows, { req: call.req, parent: eventTopicDef });
}

export function eventTopicHandlers(ctx: CatalogContext) {
  return handleAll(ctx, {
    "event-topics.list": list,
    "event-topics.get": get,
    "event-topics.create": create,
    "event-topics.update": update,
    "event-topics.delete": remove,
    "event-topics.related": related,
    "event-topics.relationship": relationship,
  });
}
