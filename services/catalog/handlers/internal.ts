/**
 * Capabilities other services ask the catalog for over the bus: who a caller is, their roles on
 * an event (or on many at once), which events are live, ticket prices, and lists of tickets or
 * events among given ids. Other services never read the catalog's tables.
 */
import { BadRequestError } from "@shared/errors.ts";
import { renderList, withTrashed } from "@shared/handlers/mod.ts";
import type { ResourceDef } from "@shared/jsonapi.ts";
import { type ListQuery, parseListQuery, type QuerySpec } from "@shared/query.ts";
import { type Caller, type CatalogContext, loadCaller } from "../context.ts";
import { eventDef, eventQuery, ticketDef, ticketQuery } from "../resources.ts";
import type { Row } from "../store/common.ts";
import { getEvent, getEventsWithRoles, listEvents, liveEventIds } from "../store/events.ts";
import { getTickets, listTickets } from "../store/tickets.ts";
import { rolesOnEvent } from "../store/users.ts";
import { type CatalogHandlers, viewer } from "./common.ts";
import { loadIncluded } from "./includes.ts";

type Role = "owner" | "organizer" | "coorganizer";

export function internalHandlers(
  ctx: CatalogContext,
): Pick<
  CatalogHandlers,
  "internal.access" | "internal.live-events" | "internal.tickets" | "internal.list"
> {
  return {
    "internal.access": async ({ actor, event: key, events: keys }) => {
      // A token of a deleted user is refused here too (UnauthorizedError crosses the bus).
      const caller = await loadCaller(ctx.sql, actor);
      const event = key ? await accessOf(ctx, caller, key) : null;
      if (!keys) return { caller, event };
      const found = await getEventsWithRoles(ctx.sql, keys, { viewer: viewer(caller) });
      const events = Object.fromEntries(keys.map((asked) => {
        const row = found.get(asked);
        return [asked, row ? eventAccess(row.event, row.roles) : null];
      }));
      return { caller, event, events };
    },
    "internal.live-events": async ({ ids }) => ({ live: await liveEventIds(ctx.sql, ids) }),
    "internal.tickets": async ({ ids }) => {
      const rows = await getTickets(ctx.sql, ids);
      return {
        tickets: rows.map((row) => ({
          id: String(row.id),
          eventId: String(row.event_id),
          type: row.type as "free" | "paid" | "donation",
          price: String(row.price),
        })),
      };
    },
    "internal.list": async ({ actor, type, ids, path, query }) => {
      const lister = listers[type] ??
        badRequest(`Cannot list ${type} resources among ids here`);
      // Read as the type's own lists read it: the same 400s, before anything is listed.
      const parsed = parseListQuery(query, lister.spec);
      const caller = await loadCaller(ctx.sql, actor);
      const options = { caller, ids, withTrashed: withTrashed(caller, parsed.extra) };
      const result = await lister.list(ctx, parsed, options);
      const included = await loadIncluded(ctx, caller, type, result.rows, parsed);
      const reply = renderList(lister.def, result, {
        req: { path, query },
        query: parsed,
        included,
      });
      return {
        document: reply.body as { data: [] },
        ...(reply.foreignIncludes && { foreignIncludes: reply.foreignIncludes }),
        ...(reply.foreignRelations && { foreignRelations: reply.foreignRelations }),
      };
    },
  };
}

/** The event `key` names as `caller` may see it, with their roles on it; null when none. */
async function accessOf(ctx: CatalogContext, caller: Caller | null, key: string) {
  const event = await getEvent(ctx.sql, key, { viewer: viewer(caller) });
  if (!event) return null;
  const roles = caller ? await rolesOnEvent(ctx.sql, caller.id, String(event.id)) : [];
  return eventAccess(event, roles);
}

function eventAccess(event: Row, roles: string[]) {
  return {
    id: String(event.id),
    identifier: String(event.identifier),
    state: event.state as "draft" | "published",
    canPayByStripe: Boolean(event.can_pay_by_stripe),
    isStripeLinked: Boolean(event.is_stripe_linked),
    roles: roles as Role[],
  };
}

function badRequest(detail: string): never {
  throw new BadRequestError(detail);
}

interface ListAmong {
  caller: Caller | null;
  ids: string[];
  withTrashed: boolean;
}

/**
 * The types `internal.list` lists, each with its own lists' query rules and visibility: events
 * the caller may see (as `/v1/events`), tickets of those events (as `catalog.resolve` shows them).
 */
const listers: Record<string, {
  def: ResourceDef<Row>;
  spec: QuerySpec;
  list: (ctx: CatalogContext, query: ListQuery, options: ListAmong) => Promise<{
    rows: Row[];
    count: number;
  }>;
}> = {
  "ticket": {
    def: ticketDef,
    spec: ticketQuery,
    list: (ctx, query, { caller, ids, withTrashed }) =>
      listTickets(ctx.sql, query, { ids, viewer: viewer(caller), withTrashed }),
  },
  "event": {
    def: eventDef,
    spec: eventQuery,
    list: (ctx, query, { caller, ids, withTrashed }) =>
      listEvents(ctx.sql, query, { viewer: viewer(caller), scope: { ids }, withTrashed }),
  },
};
