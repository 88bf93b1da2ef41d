/** What event topics and sub-topics share: slugs from names, lookup by id, events under them. */
import { UnprocessableError } from "@shared/errors.ts";
import { notFound, renderLinkage, renderList, withTrashed } from "@shared/handlers/mod.ts";
import type { ResourceDef } from "@shared/jsonapi.ts";
import { parseListQuery } from "@shared/query.ts";
import type { HttpReply } from "@shared/schemas/http.ts";
import type { CatalogContext } from "../context.ts";
import { eventDef, eventQuery } from "../resources.ts";
import { type EventScope, listEvents } from "../store/events.ts";
import { getTopic, type TopicRowOf, type TopicTable } from "../store/topics.ts";
import { type Call, viewer } from "./common.ts";
import { loadIncluded } from "./includes.ts";

/** "Science & Tech!" -> "science-tech"; accents folded so slugs stay ASCII. */
export function slugify(name: string): string {
  return name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 200);
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

const names: Record<TopicTable, string> = {
  event_topics: "event topic",
  event_sub_topics: "event sub-topic",
};

/** The topic or sub-topic `{id}` (trashed ones too, for admins asking); 404 otherwise. */
export async function topicOr404<T extends TopicTable>(
  ctx: CatalogContext,
  call: Call,
  table: T,
): Promise<TopicRowOf<T>> {
  const id = call.req.params.id;
  return await getTopic(ctx.sql, table, id, withTrashed(call.caller, call.req.query)) ??
    notFound(names[table], id);
}

/** `/{id}/events` of a topic or sub-topic: published events, plus drafts the caller may see. */
export async function renderEventsUnder(
  ctx: CatalogContext,
  call: Call,
  scope: EventScope,
): Promise<HttpReply> {
  const query = parseListQuery(call.req.query, eventQuery);
  const result = await listEvents(ctx.sql, query, { viewer: viewer(call.caller), scope });
  const included = await loadIncluded(ctx, call.caller, "event", result.rows, query);
  return renderList(eventDef, result, { req: call.req, query, included });
}

/** `/{id}/relationships/events` of a topic or sub-topic: linkage of every event `/events` shows. */
export async function renderEventLinkageUnder(
  ctx: CatalogContext,
  call: Call,
  options: { scope: EventScope; parent: ResourceDef },
): Promise<HttpReply> {
  const all = parseListQuery({ "page[size]": "0" }, eventQuery);
  const { rows } = await listEvents(ctx.sql, all, {
    viewer: viewer(call.caller),
    scope: options.scope,
  });
  return renderLinkage(eventDef, rows, { req: call.req, parent: options.parent });
}
