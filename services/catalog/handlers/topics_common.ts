/** What event topics and sub-topics share: slugs from names, lookup by id, events under them. */
import { UnprocessableError } from "@shared/errors.ts";
import {
  notFound,
  permanentDelete,
  renderList,
  requireAdmin,
  withTrashed,
} from "@shared/handlers/mod.ts";
import type { ResourceDef } from "@shared/jsonapi.ts";
import { parseListQuery, parseSingleQuery, type QuerySpec } from "@shared/query.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import type { CatalogContext } from "../context.ts";
import type { Row } from "../store/common.ts";
import {
  eventDef,
  eventQuery,
  eventSubTopicDef,
  eventSubTopicQuery,
  eventTopicDef,
  eventTopicQuery,
} from "../resources.ts";
import { type EventScope, listEvents } from "../store/events.ts";
import {
  deleteTopic,
  getTopic,
  listTopics,
  purgeTopicDependents,
  type TopicRowOf,
  type TopicTable,
  trashTopicDependents,
} from "../store/topics.ts";
import {
  type Action,
  type Call,
  cascade,
  cascadeUnlinked,
  deleteWithFacts,
  viewer,
} from "./common.ts";
import { loadIncluded, renderLinkageShown, renderShown } from "./includes.ts";

/**
 * "Science & Tech!" -> "science-tech", "Наука" -> "наука": letters and digits of every script,
 * lowercased, the rest one dash. Accents on Latin letters are folded ("Café" -> "cafe", as
 * before), other scripts keep their marks (a Devanagari vowel sign is part of the word).
 */
export function slugify(name: string): string {
  const folded = name.normalize("NFKD").toLowerCase()
    .replace(/(\p{Script=Latin})\p{M}+/gu, "$1")
    .replace(/(^|[^\p{L}\p{M}])\p{M}+/gu, "$1")
    .normalize("NFC")
    .replace(/[^\p{L}\p{N}\p{M}]+/gu, "-").replace(/^-+|-+$/g, "");
  // By code points: a cut never splits a character. A cut just after a word ends on a dash.
  return Array.from(folded).slice(0, 200).join("").replace(/-+$/, "");
}

/** The slug of a name; 422 when nothing of it is left (no letter, no digit). */
export function slugFor(name: string): string {
  const slug = slugify(name);
  if (!slug) {
    throw new UnprocessableError("Cannot save: name must contain a letter or a digit", {
      pointer: "/data/attributes/name",
    });
  }
  return slug;
}

/** How each of the two tables shows on the wire. */
const kinds: Record<TopicTable, { name: string; def: ResourceDef; query: QuerySpec }> = {
  event_topics: { name: "event topic", def: eventTopicDef, query: eventTopicQuery },
  event_sub_topics: { name: "event sub-topic", def: eventSubTopicDef, query: eventSubTopicQuery },
};

/** The topic or sub-topic `{id}` (trashed ones too, for admins asking); 404 otherwise. */
export async function topicOr404<T extends TopicTable>(
  ctx: CatalogContext,
  call: Call,
  table: T,
): Promise<TopicRowOf<T>> {
  const id = call.req.params.id;
  return await getTopic(ctx.sql, table, id, withTrashed(call.caller, call.req.query)) ??
    notFound(kinds[table].name, id);
}

/**
 * `/{id}/events` of a topic or sub-topic: published events, plus drafts the caller may see (and,
 * for an admin asking `?get_trashed=true`, soft-deleted ones, as `/v1/events` shows them).
 */
export async function renderEventsUnder(
  ctx: CatalogContext,
  call: Call,
  scope: EventScope,
): Promise<HttpReply> {
  const query = parseListQuery(call.req.query, eventQuery);
  const result = await listEvents(ctx.sql, query, {
    viewer: viewer(call.caller),
    scope,
    withTrashed: withTrashed(call.caller, query.extra),
  });
  const included = await loadIncluded(ctx, call.caller, "event", result.rows, query);
  return renderList(eventDef, result, { req: call.req, query, included });
}

/** `/{id}/relationships/events` of a topic or sub-topic: linkage of every event `/events` shows. */
export async function renderEventLinkageUnder(
  ctx: CatalogContext,
  call: Call,
  options: { scope: EventScope; parent: { def: ResourceDef<Row>; row: Row } },
): Promise<HttpReply> {
  const all = parseListQuery({ "page[size]": "0" }, eventQuery);
  const { rows } = await listEvents(ctx.sql, all, {
    viewer: viewer(call.caller),
    scope: options.scope,
  });
  const related = { def: eventDef, rows };
  return await renderLinkageShown(ctx, call.caller, options.parent, related, call.req);
}

/** `GET /v1/<topics>`: trashed ones too for admins asking. */
export function listAction(table: TopicTable): Action {
  const { def, query: spec } = kinds[table];
  return async (ctx, call) => {
    const query = parseListQuery(call.req.query, spec);
    const result = await listTopics(ctx.sql, table, query, {
      withTrashed: withTrashed(call.caller, query.extra),
    });
    const included = await loadIncluded(ctx, call.caller, def.type, result.rows, query);
    return renderList(def, result, { req: call.req, query, included });
  };
}

/** `GET /v1/<topics>/{id}`. */
export function getAction(table: TopicTable): Action {
  const { def, query: spec } = kinds[table];
  return async (ctx, call) => {
    const query = parseSingleQuery(call.req.query, spec);
    const row = await topicOr404(ctx, call, table);
    return await renderShown(ctx, call.caller, def, row, query, { req: call.req });
  };
}

/**
 * `DELETE /v1/<topics>/{id}`: admins only; `?permanent=true` purges. Either way its events are
 * unlinked and a topic's sub-topics go with it (trashed, or purged), each change with its fact:
 * events first, then sub-topics, then the row (`deleteWithFacts`).
 */
export function deleteAction(table: TopicTable): Action {
  const { def } = kinds[table];
  return async (ctx, call) => {
    requireAdmin(call.caller);
    const existing = await topicOr404(ctx, call, table);
    const permanent = permanentDelete(call.caller, call.req.query);
    const dependents = permanent ? purgeTopicDependents : trashTopicDependents;
    const id = String(existing.id);
    const about = { type: def.type, row: existing, purged: permanent };
    return await deleteWithFacts(ctx, call, about, async (tx) => {
      const { subTopics, events } = await dependents(tx, table, id);
      const row = await deleteTopic(tx, table, id, permanent);
      const cascaded = [
        ...cascadeUnlinked(events),
        ...cascade("event-sub-topic", "deleted", subTopics),
      ];
      return { row, cascaded };
    });
  };
}
