/**
 * `catalog.resolve`: catalog resources by id for compound documents built by the gateway when
 * another service's response includes them. Only what the actor may see is returned. With
 * `include` (a related-resource route another service serves), what the type's own routes would
 * include comes too, under the same rules; an unknown path is a 400. `fields` is read as those
 * routes read it (an unknown type or name is a 400 naming `fields[<type>]`) and trims `data` and
 * `included`. With `trashed` (the client asked `get_trashed=true`) an admin gets soft-deleted
 * resources too, as the type's own routes show them to admins asking it.
 */
import { isAdmin } from "@shared/handlers/mod.ts";
import { type ResourceDef, toResource } from "@shared/jsonapi.ts";
import { ownerQueryText, parseSingleQuery } from "@shared/query.ts";
import { type CatalogContext, loadCaller } from "../context.ts";
import {
  eventDef,
  eventSubTopicDef,
  eventTopicDef,
  querySpecs,
  roleDef,
  ticketDef,
} from "../resources.ts";
import type { Row } from "../store/common.ts";
import { getEvents } from "../store/events.ts";
import { getRoles } from "../store/roles.ts";
import { getTickets } from "../store/tickets.ts";
import { getTopics } from "../store/topics.ts";
import { getUsers } from "../store/users.ts";
import { type CatalogHandlers, viewer } from "./common.ts";
import { loadIncluded, userDefFor } from "./includes.ts";

/** The query parameter of a client asking for the trash. */
const TRASHED = { get_trashed: "true" };

export function resolveHandler(ctx: CatalogContext): CatalogHandlers["resolve"] {
  return async ({ actor, type, ids, include = [], fields = {}, trashed }) => {
    // Checked first, with the rules of the type's own routes: a bad path or fieldset is a 400
    // whatever the ids find. The client's get_trashed comes along: what the type's own routes
    // include reads the trash as they would (`loadIncluded`).
    const text = { ...ownerQueryText({ include, fields }), ...(trashed ? TRASHED : {}) };
    const query = parseSingleQuery(text, querySpecs[type] ?? {});
    const caller = await loadCaller(ctx.sql, actor);
    const trash = { withTrashed: trashed === true && isAdmin(caller) };
    const seen = { viewer: viewer(caller), ...trash };
    const found: Record<string, () => Promise<[ResourceDef<Row> | null, Row[]]>> = {
      "event": async () => [eventDef, await getEvents(ctx.sql, ids, seen)],
      "event-topic": async () => [
        eventTopicDef,
        await getTopics(ctx.sql, "event_topics", ids, trash),
      ],
      "event-sub-topic": async () => [
        eventSubTopicDef,
        await getTopics(ctx.sql, "event_sub_topics", ids, trash),
      ],
      "user": async () => [null, await getUsers(ctx.sql, ids, trash)],
      "role": async () => [roleDef, await getRoles(ctx.sql, ids)],
      "ticket": async () => {
        // Tickets of events the actor may see (drafts stay with their organizers).
        const tickets = await getTickets(ctx.sql, ids, trash);
        const eventIds = [...new Set(tickets.map((t) => String(t.event_id)))];
        const visible = new Set(
          (await getEvents(ctx.sql, eventIds, seen)).map((e) => String(e.id)),
        );
        return [ticketDef, tickets.filter((t) => visible.has(String(t.event_id)))];
      },
    };
    const [def, rows] = await (found[type]?.() ?? Promise.resolve([null, []]));
    // Loaded first: it gives the rows the linkage of what it includes.
    const included = query.include.length
      ? await loadIncluded(ctx, caller, type, rows, query) ?? []
      : undefined;
    const wanted = query.fields[type];
    return {
      data: rows.map((row) => toResource(def ?? userDefFor(caller, row), row, { fields: wanted })),
      ...(included ? { included } : {}),
    };
  };
}
