/** Event topics and sub-topics: public reads, admin writes, slugs from names. */
import { type Route, route } from "@shared/bus.ts";
import { UnprocessableError } from "@shared/errors.ts";
import { deletedReply, parseResourceDocument, validateAttributes } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import { eventSubTopicAttributes, eventTopicAttributes } from "@shared/schemas/catalog.ts";
import { catalog } from "@shared/subjects.ts";
import { type CatalogContext, requireAdmin } from "../context.ts";
import {
  eventDef,
  eventQuery,
  eventSubTopicDef,
  eventSubTopicQuery,
  eventTopicDef,
  eventTopicQuery,
} from "../resources.ts";
import type { Row } from "../store/common.ts";
import { listEvents } from "../store/events.ts";
import { deleteTopic, getTopic, insertTopic, listTopics, updateTopic } from "../store/topics.ts";
import {
  type Call,
  commit,
  handle,
  notFound,
  permanentDelete,
  renderLinkage,
  renderList,
  renderOne,
  viewer,
  withTrashed,
} from "./common.ts";
import { loadIncluded } from "./includes.ts";

/** "Science & Tech!" -> "science-tech"; accents folded so slugs stay ASCII. */
export function slugify(name: string): string {
  return name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 200);
}

function slugFor(name: string): string {
  const slug = slugify(name);
  if (!slug) {
    throw new UnprocessableError("Cannot save: name must contain a letter or a digit", {
      pointer: "/data/attributes/name",
    });
  }
  return slug;
}

async function topicOr404(ctx: CatalogContext, call: Call): Promise<Row> {
  const id = call.req.params.id;
  return await getTopic(ctx.sql, "event_topics", id, withTrashed(call.caller, call.req.query)) ??
    notFound("event topic", id);
}

async function subTopicOr404(ctx: CatalogContext, call: Call): Promise<Row> {
  const id = call.req.params.id;
  return await getTopic(
    ctx.sql,
    "event_sub_topics",
    id,
    withTrashed(call.caller, call.req.query),
  ) ??
    notFound("event sub-topic", id);
}

/** Events of a topic or sub-topic: published ones, plus drafts the caller may see. */
async function eventsUnder(ctx: CatalogContext, call: Call, scope: Record<string, string>) {
  const query = parseListQuery(call.req.query, eventQuery);
  const result = await listEvents(ctx.sql, query, { viewer: viewer(call.caller), scope });
  return { query, result };
}

export function topicRoutes(ctx: CatalogContext): Route[] {
  const t = catalog.eventTopics;
  const s = catalog.eventSubTopics;
  return [
    route(
      t.list,
      handle(ctx, async (call) => {
        const query = parseListQuery(call.req.query, eventTopicQuery);
        const result = await listTopics(ctx.sql, "event_topics", query, {
          withTrashed: withTrashed(call.caller, query.extra),
        });
        const included = await loadIncluded(ctx, call.caller, "event-topic", result.rows, query);
        return renderList(eventTopicDef, result, call.req, query, included);
      }),
    ),
    route(
      t.get,
      handle(ctx, async (call) => {
        const query = parseSingleQuery(call.req.query, eventTopicQuery);
        const row = await topicOr404(ctx, call);
        const included = await loadIncluded(ctx, call.caller, "event-topic", [row], query);
        return renderOne(eventTopicDef, row, call.req, { included, fields: query.fields });
      }),
    ),
    route(
      t.create,
      handle(ctx, async (call) => {
        requireAdmin(call.caller);
        const doc = parseResourceDocument(call.req.body, { type: "event-topic" });
        const attrs = validateAttributes(eventTopicAttributes, doc.attributes);
        const row = await commit(
          ctx,
          call,
          { type: "event-topic", verb: "created" },
          (tx) =>
            insertTopic(tx, "event_topics", {
              name: attrs.name,
              slug: slugFor(attrs.name),
              system_image_url: attrs["system-image-url"] ?? null,
            }),
        );
        return renderOne(eventTopicDef, row, call.req, { status: 201 });
      }),
    ),
    route(
      t.update,
      handle(ctx, async (call) => {
        requireAdmin(call.caller);
        const existing = await topicOr404(ctx, call);
        const doc = parseResourceDocument(call.req.body, {
          type: "event-topic",
          id: call.req.params.id,
        });
        const attrs = validateAttributes(eventTopicAttributes.partial(), doc.attributes);
        const values = {
          ...(attrs.name !== undefined && { name: attrs.name, slug: slugFor(attrs.name) }),
          ...("system-image-url" in attrs &&
            { system_image_url: attrs["system-image-url"] ?? null }),
        };
        const row = await commit(
          ctx,
          call,
          { type: "event-topic", verb: "updated", before: existing },
          (tx) => updateTopic(tx, "event_topics", String(existing.id), values),
        );
        return renderOne(eventTopicDef, row, call.req);
      }),
    ),
    route(
      t.delete,
      handle(ctx, async (call) => {
        requireAdmin(call.caller);
        const existing = await topicOr404(ctx, call);
        const permanent = permanentDelete(call.caller, call.req.query);
        await commit(
          ctx,
          call,
          { type: "event-topic", verb: "deleted", row: existing },
          (tx) => deleteTopic(tx, "event_topics", String(existing.id), permanent),
        );
        return deletedReply;
      }),
    ),
    route(
      t.related,
      handle(ctx, async (call) => {
        const topic = await topicOr404(ctx, call);
        if (call.req.params.rel === "events") {
          const { query, result } = await eventsUnder(ctx, call, { topicId: String(topic.id) });
          const included = await loadIncluded(ctx, call.caller, "event", result.rows, query);
          return renderList(eventDef, result, call.req, query, included);
        }
        const query = parseListQuery(call.req.query, eventSubTopicQuery);
        const result = await listTopics(ctx.sql, "event_sub_topics", query, {
          topicId: String(topic.id),
        });
        return renderList(eventSubTopicDef, result, call.req, query);
      }),
    ),
    route(
      t.relationship,
      handle(ctx, async (call) => {
        const topic = await topicOr404(ctx, call);
        const all = parseListQuery({ "page[size]": "0" }, eventQuery);
        if (call.req.params.rel === "events") {
          const { rows } = await listEvents(ctx.sql, all, {
            viewer: viewer(call.caller),
            scope: { topicId: String(topic.id) },
          });
          return renderLinkage(call.req, eventTopicDef, rows, eventDef);
        }
        const { rows } = await listTopics(ctx.sql, "event_sub_topics", all, {
          topicId: String(topic.id),
        });
        return renderLinkage(call.req, eventTopicDef, rows, eventSubTopicDef);
      }),
    ),

    route(
      s.list,
      handle(ctx, async (call) => {
        const query = parseListQuery(call.req.query, eventSubTopicQuery);
        const result = await listTopics(ctx.sql, "event_sub_topics", query, {
          withTrashed: withTrashed(call.caller, query.extra),
        });
        const included = await loadIncluded(
          ctx,
          call.caller,
          "event-sub-topic",
          result.rows,
          query,
        );
        return renderList(eventSubTopicDef, result, call.req, query, included);
      }),
    ),
    route(
      s.get,
      handle(ctx, async (call) => {
        const query = parseSingleQuery(call.req.query, eventSubTopicQuery);
        const row = await subTopicOr404(ctx, call);
        const included = await loadIncluded(ctx, call.caller, "event-sub-topic", [row], query);
        return renderOne(eventSubTopicDef, row, call.req, { included, fields: query.fields });
      }),
    ),
    route(
      s.create,
      handle(ctx, async (call) => {
        requireAdmin(call.caller);
        const doc = parseResourceDocument(call.req.body, {
          type: "event-sub-topic",
          relationships: eventSubTopicDef.relationships,
        });
        const attrs = validateAttributes(eventSubTopicAttributes, doc.attributes);
        const topicRef = doc.relationships["event-topic"];
        if (!topicRef || Array.isArray(topicRef)) {
          throw new UnprocessableError("Cannot save event sub-topic: event-topic is required", {
            pointer: "/data/relationships/event-topic",
          });
        }
        const topic = await getTopic(ctx.sql, "event_topics", topicRef.id);
        if (!topic) {
          throw new UnprocessableError(
            "Cannot save event sub-topic: the event topic does not exist",
            {
              pointer: "/data/relationships/event-topic",
            },
          );
        }
        const row = await commit(
          ctx,
          call,
          { type: "event-sub-topic", verb: "created" },
          (tx) =>
            insertTopic(tx, "event_sub_topics", {
              name: attrs.name,
              slug: slugFor(attrs.name),
              event_topic_id: String(topic.id),
            }),
        );
        return renderOne(eventSubTopicDef, row, call.req, { status: 201 });
      }),
    ),
    route(
      s.update,
      handle(ctx, async (call) => {
        requireAdmin(call.caller);
        const existing = await subTopicOr404(ctx, call);
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
        const topicRef = doc.relationships["event-topic"];
        if (topicRef !== undefined) {
          const topic = topicRef && !Array.isArray(topicRef)
            ? await getTopic(ctx.sql, "event_topics", topicRef.id)
            : undefined;
          if (!topic) {
            throw new UnprocessableError(
              "Cannot save event sub-topic: the event topic does not exist",
              {
                pointer: "/data/relationships/event-topic",
              },
            );
          }
          values.event_topic_id = String(topic.id);
        }
        const row = await commit(
          ctx,
          call,
          { type: "event-sub-topic", verb: "updated", before: existing },
          (tx) => updateTopic(tx, "event_sub_topics", String(existing.id), values),
        );
        return renderOne(eventSubTopicDef, row, call.req);
      }),
    ),
    route(
      s.delete,
      handle(ctx, async (call) => {
        requireAdmin(call.caller);
        const existing = await subTopicOr404(ctx, call);
        const permanent = permanentDelete(call.caller, call.req.query);
        await commit(
          ctx,
          call,
          { type: "event-sub-topic", verb: "deleted", row: existing },
          (tx) => deleteTopic(tx, "event_sub_topics", String(existing.id), permanent),
        );
        return deletedReply;
      }),
    ),
    route(
      s.related,
      handle(ctx, async (call) => {
        const sub = await subTopicOr404(ctx, call);
        if (call.req.params.rel === "events") {
          const { query, result } = await eventsUnder(ctx, call, { subTopicId: String(sub.id) });
          const included = await loadIncluded(ctx, call.caller, "event", result.rows, query);
          return renderList(eventDef, result, call.req, query, included);
        }
        const topic = await getTopic(ctx.sql, "event_topics", String(sub.event_topic_id)) ??
          notFound("event topic", String(sub.event_topic_id));
        return renderOne(eventTopicDef, topic, call.req);
      }),
    ),
    route(
      s.relationship,
      handle(ctx, async (call) => {
        const sub = await subTopicOr404(ctx, call);
        if (call.req.params.rel === "events") {
          const all = parseListQuery({ "page[size]": "0" }, eventQuery);
          const { rows } = await listEvents(ctx.sql, all, {
            viewer: viewer(call.caller),
            scope: { subTopicId: String(sub.id) },
          });
          return renderLinkage(call.req, eventSubTopicDef, rows, eventDef);
        }
        const topic = await getTopic(ctx.sql, "event_topics", String(sub.event_topic_id));
        return renderLinkage(call.req, eventSubTopicDef, topic ?? null, eventTopicDef);
      }),
    ),
  ];
}
