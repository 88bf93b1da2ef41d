/**
 * Event topics: public reads, admin writes, slugs from names; an admin restores a trashed one (and
 * the sub-topics trashed with it). One action per operation.
 */
import { requireAdmin, withTrashed } from "@shared/handlers/mod.ts";
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
import { renderLinkageShown, renderWritten } from "./includes.ts";
import {
  insertTopic,
  listTopics,
  restoreTrashedAlong,
  type TopicValues,
  updateTopic,
} from "../store/topics.ts";
import { type Call, cascade, commit, commitWithCascade, handleAll, restores } from "./common.ts";
import { renderRelatedList } from "./related.ts";
import {
  deleteAction,
  getAction,
  listAction,
  renderEventLinkageUnder,
  renderEventsUnder,
  slugFor,
  topicOr404,
} from "./topics_common.ts";

const TABLE = "event_topics";

async function create(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const query = parseSingleQuery(call.req.query, eventTopicQuery);
  const doc = parseResourceDocument(call.req.body, {
    type: "event-topic",
    known: eventTopicDef.relationships,
  });
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
  return await renderWritten(ctx, call.caller, eventTopicDef, row, query, {
    req: call.req,
    status: 201,
  });
}

async function update(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  requireAdmin(call.caller);
  const existing = await topicOr404(ctx, call, TABLE);
  const query = parseSingleQuery(call.req.query, eventTopicQuery);
  const doc = parseResourceDocument(call.req.body, {
    type: "event-topic",
    id: call.req.params.id,
    known: eventTopicDef.relationships,
  });
  const attrs = validateAttributes(eventTopicAttributes.partial(), doc.attributes);
  const values: TopicValues = {
    ...(attrs.name !== undefined && { name: attrs.name, slug: slugFor(attrs.name) }),
    ...("system-image-url" in attrs && { system_image_url: attrs["system-image-url"] ?? null }),
  };
  const restoring = restores(call.caller, existing, doc.attributes);
  const { row, cascaded } = await commitWithCascade(
    ctx,
    call,
    {
      type: "event-topic",
      verb: "updated",
      row: existing,
      update: { table: TABLE, id: existing.id, foundLive: existing.deleted_at === null },
    },
    async (tx) => {
      // Under the row's lock: a concurrent restore that came first leaves nothing to bring back.
      const back = restoring ? await restoreTrashedAlong(tx, existing.id) : [];
      const restored: TopicValues = restoring ? { deleted_at: null } : {};
      const row = await updateTopic(tx, TABLE, existing.id, { ...values, ...restored });
      // Announced after the topic's: never live under a topic still trashed.
      const restoredAlong = { follows: true as const, changed: ["deleted-at"] };
      return { row, cascaded: cascade("event-sub-topic", "updated", back, restoredAlong) };
    },
  );
  const shown = await renderWritten(ctx, call.caller, eventTopicDef, row, query, { req: call.req });
  return { ...shown, cascaded };
}

/** `/events` or `/event-sub-topics` of a topic. */
async function related(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const topic = await topicOr404(ctx, call, TABLE);
  if (call.req.params.rel === "events") {
    return await renderEventsUnder(ctx, call, { topicId: topic.id });
  }
  const query = parseListQuery(call.req.query, eventSubTopicQuery);
  // As `/events` here: an admin asking `?get_trashed=true` sees the trashed ones too (those
  // trashed along with a trashed topic are reachable no other way).
  const result = await listTopics(ctx.sql, "event_sub_topics", query, {
    topicId: topic.id,
    withTrashed: withTrashed(call.caller, query.extra),
  });
  return await renderRelatedList(ctx, call, eventSubTopicDef, result, query);
}

async function relationship(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const topic = await topicOr404(ctx, call, TABLE);
  if (call.req.params.rel === "events") {
    return await renderEventLinkageUnder(ctx, call, {
      scope: { topicId: topic.id },
      parent: { def: eventTopicDef, row: topic },
    });
  }
  const all = parseListQuery({ "page[size]": "0" }, eventQuery);
  const { rows } = await listTopics(ctx.sql, "event_sub_topics", all, { topicId: topic.id });
  const parent = { def: eventTopicDef, row: topic };
  const related = { def: eventSubTopicDef, rows };
  return await renderLinkageShown(ctx, call.caller, parent, related, call.req);
}

export function eventTopicHandlers(ctx: CatalogContext) {
  return handleAll(ctx, {
    "event-topics.list": listAction(TABLE),
    "event-topics.get": getAction(TABLE),
    "event-topics.create": create,
    "event-topics.update": update,
    "event-topics.delete": deleteAction(TABLE),
    "event-topics.related": related,
    "event-topics.relationship": relationship,
  });
}
