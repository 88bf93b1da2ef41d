/** Events: anyone logged in creates one (and owns it); co-organizers change it; drafts stay private. */
import { UnprocessableError } from "@shared/errors.ts";
import { changeWithFact } from "@shared/facts.ts";
import {
  deletedReplyOf,
  notFound,
  permanentDelete,
  renderList,
  requireLogin,
  trashedAsked,
  withTrashed,
} from "@shared/handlers/mod.ts";
import {
  type ParsedResource,
  parseResourceDocument,
  type ResourceDef,
  validateAttributes,
} from "@shared/jsonapi.ts";
import type { ListQuery } from "@shared/query.ts";
import { parseListQuery, parseSingleQuery } from "@shared/query.ts";
import { eventAttributes, eventUpdateAttributes } from "@shared/schemas/catalog.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import type { Queryable } from "@shared/db.ts";
import type { z } from "zod";
import { type CatalogContext, knownCaller, requireEventLevel } from "../context.ts";
import {
  eventDef,
  eventQuery,
  eventSubTopicDef,
  eventTopicDef,
  publicUserDef,
  ticketDef,
  ticketQuery,
  usersEventsRoleDef,
  usersEventsRoleQuery,
} from "../resources.ts";
import type { EventRow, Row } from "../store/common.ts";
import {
  deleteEvent,
  type EventValues,
  getEvent,
  getEventAs,
  insertEvent,
  listEvents,
  purgeEventDependents,
  updateEvent,
} from "../store/events.ts";
import { listGrants } from "../store/roles.ts";
import { listTickets } from "../store/tickets.ts";
import { getTopic, lockLiveTopic } from "../store/topics.ts";
import { getUser, lockLiveUser } from "../store/users.ts";
import {
  type Call,
  cascade,
  commit,
  deleteWithFacts,
  fact,
  handleAll,
  restores,
  viewer,
} from "./common.ts";
import {
  loadIncluded,
  renderLinkageShown,
  renderShown,
  renderWritten,
  userDefFor,
  writeQuery,
} from "./includes.ts";
import { renderRelatedList, renderRelatedOne } from "./related.ts";

const writableRelationships = {
  "event-topic": { type: "event-topic" },
  "event-sub-topic": { type: "event-sub-topic" },
  // Read back: clients such as open-event-frontend send every relationship they read on save.
  "owner": { type: "user" },
  // Read back too, and ignored, as read-only attributes are: other services own them (the link
  // changes through /v1/stripe-authorizations, an event code through its `events`). The
  // frontend's wizard sends the authorization it connected on every later save (a 422 before).
  "stripe-authorization": { type: "stripe-authorization" },
  "discount-code": { type: "discount-code" },
};

/**
 * `owner` as a client sends it back: the current owner, or null (a client that did not load it),
 * changes nothing; another user is a 422 (owners are granted through users-events-roles). The
 * original let it be set; refusing every document that carried it broke the frontend's edits.
 */
function ownerUnchanged(doc: ParsedResource, current: string | null): void {
  if (!Object.hasOwn(doc.relationships, "owner")) return;
  const sent = doc.relationships.owner as { id: string } | null;
  if (sent === null || sent.id === current) return;
  throw new UnprocessableError(
    "Cannot save event: its owner is changed through users-events-roles",
    { pointer: "/data/relationships/owner" },
  );
}

/** The event named by `{id}` (id or identifier), if the caller may see it. */
async function eventOr404(ctx: CatalogContext, call: Call): Promise<EventRow> {
  const key = call.req.params.id;
  return await getEvent(ctx.sql, key, {
    viewer: viewer(call.caller),
    withTrashed: withTrashed(call.caller, call.req.query),
  }) ?? notFound("event", key);
}

function unprocessable(detail: string, pointer: string): never {
  throw new UnprocessableError(`Cannot save event: ${detail}`, { pointer });
}

/** A to-one relationship as sent: undefined (not sent), null or the id; 422 for an array. */
function sentId(doc: ParsedResource, name: "event-topic" | "event-sub-topic") {
  const ref = doc.relationships[name];
  if (!Array.isArray(ref)) return ref === undefined || ref === null ? ref : ref.id;
  unprocessable(`${name} is a to-one relationship`, `/data/relationships/${name}`);
}

function idOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** The live topic `id`, locked until the write ends; 422 when there is none. */
async function liveTopicId(tx: Queryable, id: string): Promise<string> {
  const topic = await lockLiveTopic(tx, "event_topics", id) ??
    unprocessable("the event topic does not exist", "/data/relationships/event-topic");
  return String(topic.id);
}

/** Sub-topic `id` sent for an event of `topicId` (none: the sub-topic's topic becomes it). */
async function subTopicValues(
  tx: Queryable,
  id: string | null,
  topicId: string | null,
): Promise<EventValues> {
  if (id === null) return { event_sub_topic_id: null };
  const pointer = "/data/relationships/event-sub-topic";
  const sub = await lockLiveTopic(tx, "event_sub_topics", id) ??
    unprocessable("the event sub-topic does not exist", pointer);
  const subTopicOf = String(sub.event_topic_id);
  if (topicId !== null && topicId !== subTopicOf) {
    unprocessable("the event sub-topic belongs to another topic", pointer);
  }
  return { event_topic_id: subTopicOf, event_sub_topic_id: String(sub.id) };
}

/**
 * Topic and sub-topic from the relationships, read in the write's transaction and locked (a
 * topic trashed or a sub-topic moved meanwhile waits for the write, then unlinks it, or is seen
 * trashed or moved). What is sent as stored is no change and never refused: clients send back
 * every relationship they read. A sub-topic must belong to the event's topic: a new one that does
 * not is a 422; the stored one is cleared when the topic changes to one it does not belong to.
 */
async function topicValues(
  tx: Queryable,
  doc: ParsedResource,
  current: { event_topic_id?: unknown; event_sub_topic_id?: unknown },
): Promise<EventValues> {
  const stored = {
    topic: idOrNull(current.event_topic_id),
    sub: idOrNull(current.event_sub_topic_id),
  };
  const [topicSent, subSent] = [sentId(doc, "event-topic"), sentId(doc, "event-sub-topic")];
  const values: EventValues = {};
  if (topicSent !== undefined && topicSent !== stored.topic) {
    values.event_topic_id = topicSent === null ? null : await liveTopicId(tx, topicSent);
  }
  const topicId = values.event_topic_id !== undefined ? values.event_topic_id : stored.topic;
  if (subSent !== undefined && subSent !== stored.sub) {
    return { ...values, ...await subTopicValues(tx, subSent, topicId) };
  }
  if (values.event_topic_id !== undefined && stored.sub !== null) {
    const sub = await lockLiveTopic(tx, "event_sub_topics", stored.sub);
    if (String(sub?.event_topic_id) !== topicId) values.event_sub_topic_id = null;
  }
  return values;
}

/**
 * Locks, before the event's row, the topic and sub-topics `topicValues` will lock, as the event
 * was read: a topic's deletion locks the topic, its sub-topics, then its events, and an event
 * PATCH that took them the other way round deadlocked with it (one of the two answered 503). Only
 * locks: what it finds is checked under the event's lock.
 */
async function lockTopicsFirst(tx: Queryable, doc: ParsedResource, event: EventRow) {
  const stored = { topic: idOrNull(event.event_topic_id), sub: idOrNull(event.event_sub_topic_id) };
  const [topicSent, subSent] = [sentId(doc, "event-topic"), sentId(doc, "event-sub-topic")];
  const topicChanges = topicSent !== undefined && topicSent !== stored.topic;
  if (topicChanges && topicSent !== null) await lockLiveTopic(tx, "event_topics", topicSent);
  const sub = subSent !== undefined && subSent !== stored.sub
    ? subSent
    : topicChanges
    ? stored.sub
    : null;
  if (sub !== null) await lockLiveTopic(tx, "event_sub_topics", sub);
}

/** The URL may name the event by identifier while the body carries its numeric id. */
function sameEvent(body: unknown, event: EventRow): boolean {
  const id = (body as { data?: { id?: unknown } })?.data?.id;
  return id !== undefined && id !== null && String(id) === String(event.id);
}

function checkDates(startsAt: Date, endsAt: Date) {
  if (endsAt.getTime() <= startsAt.getTime()) {
    unprocessable("ends-at must be after starts-at", "/data/attributes/ends-at");
  }
}

/** An event's related rows; `trashed`: they show an admin the trash they asked for. */
type Related =
  | { def: ResourceDef<Row>; one: Row | null; trashed?: boolean }
  | { def: ResourceDef<Row>; query: ListQuery; many: { rows: Row[]; count: number } };

async function relatedRows(
  ctx: CatalogContext,
  call: Call,
  event: EventRow,
  linkageOnly: boolean,
): Promise<Related> {
  const rel = call.req.params.rel;
  const eventId = String(event.id);
  const all = { "page[size]": "0" };
  switch (rel) {
    case "event-topic":
      return {
        def: eventTopicDef,
        one: event.event_topic_id
          ? await getTopic(ctx.sql, "event_topics", String(event.event_topic_id)) ?? null
          : null,
      };
    case "event-sub-topic":
      return {
        def: eventSubTopicDef,
        one: event.event_sub_topic_id
          ? await getTopic(ctx.sql, "event_sub_topics", String(event.event_sub_topic_id)) ?? null
          : null,
      };
    case "owner": {
      // A trashed event's only owner may have deleted their account since: an admin asking the
      // trash (who reaches the event so) sees them, as `include=owner` shows them.
      const trashed = withTrashed(call.caller, call.req.query);
      const owner = event.owner_id
        ? await getUser(ctx.sql, String(event.owner_id), trashed)
        : undefined;
      const def = owner ? userDefFor(call.caller, owner) : publicUserDef;
      return { def, one: owner ?? null, trashed };
    }
    case "tickets": {
      const query = parseListQuery(linkageOnly ? all : call.req.query, ticketQuery);
      // Trashed ones too for an admin asking, as a user's or a topic's event list shows them.
      const trashed = !linkageOnly && withTrashed(call.caller, query.extra);
      const many = await listTickets(ctx.sql, query, { eventId, withTrashed: trashed });
      return { def: ticketDef, query, many };
    }
    default: {
      await requireEventLevel(ctx.sql, call.caller, eventId, "coorganizer");
      const query = parseListQuery(linkageOnly ? all : call.req.query, usersEventsRoleQuery);
      return {
        def: usersEventsRoleDef,
        query,
        many: await listGrants(ctx.sql, query, { eventId }),
      };
    }
  }
}

async function list(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const query = parseListQuery(call.req.query, eventQuery);
  const result = await listEvents(ctx.sql, query, {
    viewer: viewer(call.caller),
    withTrashed: withTrashed(call.caller, query.extra),
  });
  const included = await loadIncluded(ctx, call.caller, "event", result.rows, query);
  return renderList(eventDef, result, { req: call.req, query, included });
}

/**
 * A signed-in caller is read with the event, in one statement (the read signed-in visitors make
 * most). The query is read after it: an unknown caller is 401 and an event the caller may not
 * see (a draft) 404 before a bad query's 400, as for every resource by id.
 */
async function get(ctx: CatalogContext, req: HttpRequest): Promise<HttpReply> {
  const key = req.params.id;
  const found = req.actor
    ? await getEventAs(ctx.sql, key, {
      actor: req.actor,
      trashedAsked: trashedAsked(req.query),
    })
    : { event: await getEvent(ctx.sql, key, { viewer: viewer(null) }) };
  const caller = req.actor ? knownCaller(found.caller) : null;
  const row = found.event ?? notFound("event", key);
  const query = parseSingleQuery(req.query, eventQuery);
  return await renderShown(ctx, caller, eventDef, row, query, { req });
}

async function create(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const caller = requireLogin(call.caller);
  const query = await writeQuery(ctx, call, eventDef);
  const doc = parseResourceDocument(call.req.body, {
    type: "event",
    relationships: writableRelationships,
    known: eventDef.relationships,
  });
  ownerUnchanged(doc, caller.id);
  const attrs = validateAttributes(eventAttributes, doc.attributes);
  checkDates(attrs["starts-at"], attrs["ends-at"]);
  const values: EventValues = {
    name: attrs.name,
    description: attrs.description ?? null,
    location_name: attrs["location-name"] ?? null,
    starts_at: attrs["starts-at"],
    ends_at: attrs["ends-at"],
    timezone: attrs.timezone,
    state: attrs.state,
    privacy: attrs.privacy,
    can_pay_by_stripe: attrs["can-pay-by-stripe"],
    payment_currency: attrs["payment-currency"] ?? null,
  };
  // The creator becomes the owner: one transaction, two facts.
  const { owner_role: _, ...event } = await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx) => {
      // A token's user deleted meanwhile owns nothing: the 401 their token now gets.
      if (!await lockLiveUser(tx, caller.id)) knownCaller(null);
      return insertEvent(tx, { ...values, ...await topicValues(tx, doc, {}) }, caller.id);
    },
    ({ owner_role, ...event }) => [
      fact(call, "event", "created", event),
      fact(call, "users-events-role", "created", owner_role),
    ],
  );
  return await renderWritten(ctx, caller, eventDef, event, query, { req: call.req, status: 201 });
}

/**
 * What an admin's restore (handlers/common.ts `restores`) sets, read under the row's lock: nothing
 * once the event is live (a concurrent restore came first, and its organizers may have published
 * it since). A restored event whose start has passed comes back as a draft, as the original's
 * Restore made it (its organizers publish it anew); it does not reappear in public lists by itself.
 */
function restored(restoring: boolean, current: EventRow, startsAt: Date): EventValues {
  if (!restoring || current.deleted_at === null) return {};
  const past = startsAt.getTime() <= Date.now();
  return past ? { deleted_at: null, state: "draft" } : { deleted_at: null };
}

/** The columns a PATCH sets: only the attributes it sends. */
function updatedValues(attrs: z.infer<typeof eventUpdateAttributes>): EventValues {
  const values: EventValues = {};
  if (attrs.name !== undefined) values.name = attrs.name;
  if (attrs.description !== undefined) values.description = attrs.description;
  if (attrs["location-name"] !== undefined) values.location_name = attrs["location-name"];
  if (attrs["starts-at"]) values.starts_at = attrs["starts-at"];
  if (attrs["ends-at"]) values.ends_at = attrs["ends-at"];
  if (attrs.timezone) values.timezone = attrs.timezone;
  if (attrs.state) values.state = attrs.state;
  if (attrs.privacy) values.privacy = attrs.privacy;
  if (attrs["can-pay-by-stripe"] !== undefined) {
    values.can_pay_by_stripe = attrs["can-pay-by-stripe"];
  }
  if (attrs["payment-currency"] !== undefined) values.payment_currency = attrs["payment-currency"];
  return values;
}

async function update(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const existing = await eventOr404(ctx, call);
  await requireEventLevel(ctx.sql, call.caller, existing.id, "coorganizer");
  const query = await writeQuery(ctx, call, eventDef);
  const doc = parseResourceDocument(call.req.body, {
    type: "event",
    id: sameEvent(call.req.body, existing) ? existing.id : call.req.params.id,
    relationships: writableRelationships,
    known: eventDef.relationships,
  });
  ownerUnchanged(doc, existing.owner_id === null ? null : String(existing.owner_id));
  const values = updatedValues(validateAttributes(eventUpdateAttributes, doc.attributes));
  const restoring = restores(call.caller, existing, doc.attributes);
  const row = await commit(
    ctx,
    call,
    {
      type: "event",
      verb: "updated",
      update: { table: "events", id: existing.id, foundLive: existing.deleted_at === null },
      lockFirst: (tx) => lockTopicsFirst(tx, doc, existing),
    },
    async (tx, locked) => {
      // The merged state as it is now, under the row's lock (a concurrent PATCH may have
      // moved a date or the topic since `existing` was read).
      const current = locked as EventRow;
      const startsAt = values.starts_at ?? current.starts_at;
      checkDates(startsAt, values.ends_at ?? current.ends_at);
      return await updateEvent(tx, existing.id, {
        ...values,
        ...restored(restoring, current, startsAt),
        ...await topicValues(tx, doc, current),
      });
    },
  );
  return await renderWritten(ctx, call.caller, eventDef, row, query, { req: call.req });
}

async function remove(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const existing = await eventOr404(ctx, call);
  await requireEventLevel(ctx.sql, call.caller, existing.id, "coorganizer");
  if (permanentDelete(call.caller, call.req.query)) return await purge(ctx, call, existing);
  await commit(
    ctx,
    call,
    { type: "event", verb: "deleted", row: existing },
    (tx) => deleteEvent(tx, existing.id, false),
  );
  // It may have been addressed by its identifier: the caches drop the id's pages too.
  return deletedReplyOf("event", { id: String(existing.id), identifier: existing.identifier });
}

/** A permanent delete: its tickets and roles go with it, each with its fact. */
function purge(ctx: CatalogContext, call: Call, existing: EventRow): Promise<HttpReply> {
  return deleteWithFacts(ctx, call, { type: "event", row: existing, purged: true }, async (tx) => {
    const { tickets, grants } = await purgeEventDependents(tx, existing.id);
    const row = await deleteEvent(tx, existing.id, true);
    const cascaded = [
      ...cascade("ticket", "deleted", tickets),
      ...cascade("users-events-role", "deleted", grants),
    ];
    return { row, cascaded };
  });
}

async function related(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const event = await eventOr404(ctx, call);
  const found = await relatedRows(ctx, call, event, false);
  return "many" in found
    ? await renderRelatedList(ctx, call, found.def, found.many, found.query)
    : await renderRelatedOne(ctx, call, found.def, found.one);
}

async function relationship(ctx: CatalogContext, call: Call): Promise<HttpReply> {
  const event = await eventOr404(ctx, call);
  const found = await relatedRows(ctx, call, event, true);
  const related = "many" in found
    ? { def: found.def, rows: found.many.rows }
    : { def: found.def, rows: found.one, trashed: found.trashed };
  return await renderLinkageShown(
    ctx,
    call.caller,
    { def: eventDef, row: event },
    related,
    call.req,
  );
}

export function eventHandlers(ctx: CatalogContext) {
  return handleAll(ctx, {
    "events.list": list,
    "events.get": { readsCaller: get },
    "events.create": create,
    "events.update": update,
    "events.delete": remove,
    "events.related": related,
    "events.relationship": relationship,
  });
}
