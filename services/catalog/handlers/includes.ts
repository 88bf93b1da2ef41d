/**
 * Compound documents inside the catalog: for each relationship `include` may name, how to load
 * the related rows of a page of parents in one query; a dotted path (`tickets.event`) loads one
 * level after another, each from the rows of the level above. Visibility rules apply at every
 * level (a draft event is never included for someone who may not see it; other people's emails
 * never appear). An admin asking `get_trashed=true` gets soft-deleted rows too, wherever the
 * related route of the same relationship shows them (`/v1/events/{id}/tickets?get_trashed=true`).
 */
import {
  type ResourceDef,
  type ResourceObject,
  setIncludedLinkage,
  toResource,
} from "@shared/jsonapi.ts";
import { type ListQuery, parseSingleQuery, relationshipQuerySpec } from "@shared/query.ts";
import {
  checkForeignFieldsets,
  isAdmin,
  renderLinkage,
  renderOne,
  withTrashed,
} from "@shared/handlers/mod.ts";
import { GatewayTimeoutError } from "@shared/errors.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import type { Caller, CatalogContext } from "../context.ts";
import type { Row } from "../store/common.ts";
import { type Queryable, readAfterChange } from "@shared/db.ts";
import { eventsOfUsers, eventsUnder, getEvents } from "../store/events.ts";
import { getRoles, grantsOf } from "../store/roles.ts";
import { ticketsOf } from "../store/tickets.ts";
import { getTopics, subTopicsOf } from "../store/topics.ts";
import { getUsers } from "../store/users.ts";
import {
  EVENT_RELATIONSHIPS_LEFT_OUT,
  eventDef,
  eventSubTopicDef,
  eventTopicDef,
  publicUserDef,
  querySpecs,
  roleDef,
  roleOfList,
  ticketDef,
  USER_EVENT_LISTS,
  userDef,
  usersEventsRoleDef,
} from "../resources.ts";
import { viewer } from "./common.ts";

interface Loaded {
  def: ResourceDef<Row>;
  rows: Row[];
  /**
   * For a to-many include: the column of a loaded row naming its parent's id. The parents get
   * that linkage as `data`, so the included rows are reachable (to-one linkage is a column).
   */
  backKey?: string;
}

/**
 * Loads what one include path adds for `parents`, on `sql` (the pool or a write's transaction);
 * `trashed` rows too when the caller is an admin who asked for them.
 */
type Loader = (
  sql: Queryable,
  caller: Caller | null,
  parents: Row[],
  trashed: boolean,
) => Promise<Loaded>;

const ids = (rows: Row[], key: string) =>
  [...new Set(rows.map((row) => row[key]).filter((v) => v !== null && v !== undefined))].map(
    String,
  );

/** Self and admins see a user in full; everyone else sees the public part. */
export function userDefFor(caller: Caller | null, row: Row): ResourceDef<Row> {
  return isAdmin(caller) || caller?.id === String(row.id) ? userDef : publicUserDef;
}

/** Users a column names: deleted ones too for an admin asking, as `/owner` and `/user` answer. */
const usersBy = (key: string): Loader => async (sql, _caller, parents, trashed) => ({
  def: publicUserDef,
  rows: await getUsers(sql, ids(parents, key), { withTrashed: trashed }),
});

/** Users whose own relationships the caller may read (self, or anyone for admins). */
const readableUsers = (caller: Caller | null, users: Row[]) =>
  users.filter((user) => isAdmin(caller) || caller?.id === String(user.id));

/**
 * A user's events by role (`events`, `owner-events`, ...), as `/users/{id}/<list>`: for the user
 * themself and admins only; a list of a role this rebuild has not is empty.
 */
const userEvents = (list: string): Loader => async (sql, caller, parents, trashed) => {
  const role = roleOfList(list);
  const users = ids(readableUsers(caller, parents), "id");
  return {
    def: eventDef,
    rows: role === null
      ? []
      : await eventsOfUsers(sql, users, { viewer: viewer(caller), role, withTrashed: trashed }),
    backKey: "role_user_id",
  };
};

/** Events under topics or sub-topics, as the caller may see them. */
const eventsBy =
  (column: "event_topic_id" | "event_sub_topic_id"): Loader =>
  async (sql, caller, parents, trashed) => ({
    def: eventDef,
    rows: await eventsUnder(sql, ids(parents, "id"), {
      column,
      viewer: viewer(caller),
      withTrashed: trashed,
    }),
    backKey: column,
  });

/** A placeholder relationship (resources.ts): every parent gets empty linkage, nothing more. */
const nothing: Loader = () => Promise.resolve({ def: eventDef, rows: [], backKey: "id" });

const loaders: Record<string, Record<string, Loader>> = {
  "user": {
    ...Object.fromEntries(Object.keys(USER_EVENT_LISTS).map((list) => [list, userEvents(list)])),
    // Those on trashed events too for an admin asking, as `/users/{id}/users-events-roles`.
    "users-events-roles": async (sql, caller, parents, trashed) => ({
      def: usersEventsRoleDef,
      rows: await grantsOf(sql, { userIds: ids(readableUsers(caller, parents), "id") }, {
        viewer: { id: caller?.id ?? null, admin: isAdmin(caller) },
        withTrashed: trashed,
      }),
      backKey: "user_id",
    }),
  },
  "event": {
    // As `/events/{id}/users-events-roles`: for the event's co-organizers and admins.
    "users-events-roles": async (sql, caller, parents) => ({
      def: usersEventsRoleDef,
      rows: await grantsOf(sql, { eventIds: ids(parents, "id") }, { viewer: viewer(caller) }),
      backKey: "event_id",
    }),
    // Live only, as `/events/{id}/event-topic` answers: a topic's deletion unlinks its events, so
    // none names a trashed one.
    "event-topic": async (sql, _c, parents) => ({
      def: eventTopicDef,
      rows: await getTopics(sql, "event_topics", ids(parents, "event_topic_id")),
    }),
    "event-sub-topic": async (sql, _c, parents) => ({
      def: eventSubTopicDef,
      rows: await getTopics(sql, "event_sub_topics", ids(parents, "event_sub_topic_id")),
    }),
    "tickets": async (sql, _c, parents, trashed) => ({
      def: ticketDef,
      rows: await ticketsOf(sql, ids(parents, "id"), { withTrashed: trashed }),
      backKey: "event_id",
    }),
    "owner": usersBy("owner_id"),
    ...Object.fromEntries(EVENT_RELATIONSHIPS_LEFT_OUT.map((name) => [name, nothing])),
  },
  "event-topic": {
    "events": eventsBy("event_topic_id"),
    "event-sub-topics": async (sql, _c, parents, trashed) => ({
      def: eventSubTopicDef,
      rows: await subTopicsOf(sql, ids(parents, "id"), { withTrashed: trashed }),
      backKey: "event_topic_id",
    }),
  },
  "event-sub-topic": {
    "events": eventsBy("event_sub_topic_id"),
    // A sub-topic trashed with its topic links it: an admin asking sees it, as on `/event-topic`.
    "event-topic": async (sql, _c, parents, trashed) => ({
      def: eventTopicDef,
      rows: await getTopics(sql, "event_topics", ids(parents, "event_topic_id"), {
        withTrashed: trashed,
      }),
    }),
  },
  "ticket": {
    "event": async (sql, caller, parents, trashed) => ({
      def: eventDef,
      rows: await getEvents(sql, ids(parents, "event_id"), {
        viewer: viewer(caller),
        withTrashed: trashed,
      }),
    }),
  },
  "users-events-role": {
    "user": usersBy("user_id"),
    "event": async (sql, caller, parents, trashed) => ({
      def: eventDef,
      rows: await getEvents(sql, ids(parents, "event_id"), {
        viewer: viewer(caller),
        withTrashed: trashed,
      }),
    }),
    "role": async (sql, _c, parents) => ({
      def: roleDef,
      rows: await getRoles(sql, ids(parents, "role_name")),
    }),
  },
};

/** Gives each parent the ids of its loaded children under the relationship `name`. */
function linkChildren(parents: Row[], name: string, loaded: Loaded): void {
  const byParent = new Map<string, string[]>();
  for (const row of loaded.rows) {
    const parentId = String(row[loaded.backKey!]);
    byParent.set(parentId, [...byParent.get(parentId) ?? [], String(row.id)]);
  }
  for (const parent of parents) {
    setIncludedLinkage(parent, name, byParent.get(String(parent.id)) ?? []);
  }
}

/**
 * What a route includes: `include` and `fields`, and `extra`, whose `get_trashed` (or
 * `permanent`) brings an admin trashed rows too, read as the route's own rows are read.
 */
type IncludedQuery = Pick<ListQuery, "include" | "fields"> & Partial<Pick<ListQuery, "extra">>;

/**
 * The `included` array for `query.include` on rows of `type`. Parents of a to-many include are
 * marked with the linkage of what was loaded for them (see `setIncludedLinkage`).
 */
export async function loadIncluded(
  ctx: CatalogContext,
  caller: Caller | null,
  type: string,
  parents: Row[],
  query: IncludedQuery,
): Promise<ResourceObject[] | undefined> {
  return await includedOn(ctx.sql, caller, type, parents, query);
}

/**
 * `loadIncluded` on `sql`. With `parentsPrimary` false (a relationship route, whose primary data
 * is the linkage), a parent is included where a path leads back to it (`tickets.event`).
 * `liveOnly`: no trash whatever the query asks (a linkage that shows none).
 */
async function includedOn(
  sql: Queryable,
  caller: Caller | null,
  type: string,
  parents: Row[],
  query: IncludedQuery,
  { parentsPrimary = true, liveOnly = false } = {},
): Promise<ResourceObject[] | undefined> {
  if (!query.include.length || !parents.length) return undefined;
  const primary = new Set(parentsPrimary ? parents.map((row) => `${type}:${row.id}`) : []);
  const shown: Shown = new Map(parents.map((row) => [`${type}:${row.id}`, { def: null, row }]));
  const trashed = !liveOnly && withTrashed(caller, query.extra ?? {});
  const paths = pathTree(query.include);
  await includeLevel(sql, { caller, trashed }, { type, parents, paths, shown });
  const out: ResourceObject[] = [];
  for (const [key, { def, row }] of shown) {
    if (primary.has(key) || !def) continue;
    const shownDef = def.type === "user" ? userDefFor(caller, row) : def;
    out.push(toResource(shownDef, row, { fields: query.fields[shownDef.type] }));
  }
  return out;
}

/** Include paths as a tree of names: `tickets,tickets.event` -> tickets -> event. */
type PathTree = Map<string, PathTree>;

function pathTree(paths: string[]): PathTree {
  const root: PathTree = new Map();
  for (const path of paths) {
    let node = root;
    for (const name of path.split(".")) {
      if (!node.has(name)) node.set(name, new Map());
      node = node.get(name)!;
    }
  }
  return root;
}

/**
 * Every resource a document shows, by `<type>:<id>`, with the one row it is rendered from (the
 * primary data's rows first, with no def: they are not repeated in `included`). A resource
 * reached by two paths is one row, whose linkage each path adds to, so that JSON:API's full
 * linkage holds and nothing is included twice.
 */
type Shown = Map<string, { def: ResourceDef<Row> | null; row: Row }>;

/**
 * Loads one level of include paths for `parents` of `type` (each name in one query), links each
 * parent to what was loaded for it, then goes on with the names below each.
 */
async function includeLevel(
  sql: Queryable,
  reader: { caller: Caller | null; trashed: boolean },
  level: { type: string; parents: Row[]; paths: PathTree; shown: Shown },
): Promise<void> {
  const { type, parents, paths, shown } = level;
  const names = [...paths.keys()];
  const groups = await Promise.all(
    names.map((name) => loaders[type]?.[name]?.(sql, reader.caller, parents, reader.trashed)),
  );
  await Promise.all(names.map(async (name, index) => {
    const group = groups[index];
    if (!group) return;
    if (group.backKey) linkChildren(parents, name, group);
    const rows = new Set(group.rows.map((row) => shownRow(shown, group.def, row)));
    const below = paths.get(name)!;
    if (below.size && rows.size) {
      await includeLevel(sql, reader, {
        type: group.def.type,
        parents: [...rows],
        paths: below,
        shown,
      });
    }
  }));
}

/**
 * The row `shown` renders for `row`'s resource: the first one loaded (a parent, reached again,
 * gets its def: it is shown unless it is primary data).
 */
function shownRow(shown: Shown, def: ResourceDef<Row>, row: Row): Row {
  const key = `${def.type}:${row.id}`;
  const known = shown.get(key);
  if (known) {
    known.def ??= def;
    return known.row;
  }
  shown.set(key, { def, row });
  return row;
}

/**
 * A write's `include` and `fields`, read before anything is written: its own checked here (400),
 * and the fieldsets of other services' types the include reaches checked by their owners
 * (`checkForeignFieldsets`). Found after the write, such a fieldset was only trimmed away (a
 * review: `POST /v1/events?include=discount-codes&fields[discount-code]=bogus` created the event
 * and answered 201).
 */
export async function writeQuery(
  ctx: CatalogContext,
  call: { req: HttpRequest },
  def: ResourceDef<Row>,
): Promise<IncludedQuery> {
  const query = parseSingleQuery(call.req.query, querySpecs[def.type]);
  await checkForeignFieldsets(ctx.bus, def, query, call.req.actor);
  return query;
}

/**
 * `row` as its GET shows it: with what `query.include` asks for (loaded as `caller` may see it)
 * and the fieldsets of `query.fields`. A POST or PATCH answers so too, as the original's did
 * (flask-rest-jsonapi dumped what it wrote with the request's include and fields), through
 * `renderWritten`; the write parses its query before it writes, so a bad `include` is a 400 that
 * changed nothing.
 */
export async function renderShown(
  ctx: CatalogContext,
  caller: Caller | null,
  def: ResourceDef<Row>,
  row: Row,
  query: IncludedQuery,
  options: { req: HttpRequest; status?: number },
): Promise<HttpReply> {
  const included = await includedOn(ctx.sql, caller, def.type, [row], query);
  return renderOne(def, row, {
    ...options,
    included,
    fields: query.fields,
    include: query.include,
  });
}

/**
 * A POST's or PATCH's answer: `row` as `renderShown` shows it, once the change is made. What
 * `include` asks for is read in time for the answer to leave before the deadline
 * (`readAfterChange`); when that read fails or would be late, the change is answered as done
 * without it, and `meta.include-unavailable` says why, as the gateway answers a write whose other
 * services' resources it cannot include. Never an error: a 504 or 503 here told a client that a
 * change made (and announced) had failed, and its retry made it twice.
 */
export async function renderWritten(
  ctx: CatalogContext,
  caller: Caller | null,
  def: ResourceDef<Row>,
  row: Row,
  query: IncludedQuery,
  options: { req: HttpRequest; status?: number },
): Promise<HttpReply> {
  if (!query.include.length) return renderOne(def, row, { ...options, fields: query.fields });
  // The read links what it loads into the row it is given, level by level: cut short, the
  // change's own row must show none of it (linkage without the resources it names).
  const shown = { ...row };
  let included: ResourceObject[] | undefined;
  try {
    included = await readAfterChange(
      ctx.sql,
      (sql) => includedOn(sql, caller, def.type, [shown], query),
    );
  } catch (error) {
    const late = error instanceof GatewayTimeoutError;
    const fields = { requestId: options.req.requestId, error };
    if (late) ctx.log.warn("answering a change without what it includes: too late", fields);
    else ctx.log.error("answering a change without what it includes: the read failed", fields);
    const reply = renderOne(def, row, { ...options, fields: query.fields });
    const body = reply.body as { meta?: Record<string, unknown> };
    const why = late ? "it could not be read in the time the request had" : "it could not be read";
    body.meta = {
      ...body.meta,
      "include-unavailable": `The change is done; what it included is not (${why}): read the ` +
        "resource again with include.",
    };
    return reply;
  }
  return renderOne(def, shown, {
    ...options,
    included,
    fields: query.fields,
    include: query.include,
  });
}

/**
 * `/v1/<parent>/{id}/relationships/<rel>`: the linkage of `related` (rows of `relatedDef`'s
 * type, one, or null), with what `include` asks for from the relationship on (its paths start
 * with `rel`) and `fields`, checked as the parent's GET checks them (anything else is a 400). The
 * original read a relationship route's `include` with the parent's paths
 * (`/v1/events/1/relationships/tickets?include=tickets`). `related.trashed`: the linkage shows an
 * admin the trash they asked for, and so does what is included; otherwise it is live rows only, as
 * the linkage (`/v1/events/{id}/relationships/tickets` lists live tickets only).
 */
export async function renderLinkageShown(
  ctx: CatalogContext,
  caller: Caller | null,
  parent: { def: ResourceDef<Row>; row: Row },
  related: { def: Pick<ResourceDef, "type">; rows: unknown; trashed?: boolean },
  req: HttpRequest,
): Promise<HttpReply> {
  const spec = relationshipQuerySpec(querySpecs[parent.def.type], req.params.rel);
  const query = parseSingleQuery(req.query, spec);
  const included = await includedOn(ctx.sql, caller, parent.def.type, [parent.row], query, {
    parentsPrimary: false,
    liveOnly: !related.trashed,
  });
  return renderLinkage(related.def, related.rows, {
    req,
    parent: parent.def,
    includes: { query, included, owned: parent },
  });
}
