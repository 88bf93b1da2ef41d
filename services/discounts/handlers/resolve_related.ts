/**
 * `discounts.resolve-related`: an event's `discount-codes` (its ticket codes, for its
 * co-organizers and admins) and `discount-code` (the event code applied to it, for admins), and a
 * ticket's `discount-codes` (for the co-organizers of its event), and a user's `discount-codes`
 * (those they created, for admins and that user: theirs of events they still co-organize), for
 * `include` on events, tickets and users. Where the actor may not manage the codes, the linkage
 * is empty (`[]` or `null`), matching what is included for that parent (nothing): the document
 * stays fully linked.
 */
import { type Identifier, type ResourceObject, toResource } from "@shared/jsonapi.ts";
import type { resolveRelatedRequestSchema } from "@shared/schemas/bus.ts";
import type { Actor } from "@shared/schemas/http.ts";
import { catalogInternal } from "@shared/subjects.ts";
import type { z } from "zod";
import { isAdmin } from "@shared/handlers/mod.ts";
import {
  access,
  accessMany,
  type DiscountsContext,
  type EventAccess,
  isCoorganizer,
} from "../context.ts";
import type { ManyAccess } from "@shared/access.ts";
import { codeDef, codeQuery } from "../resources.ts";
import { checkFieldset } from "@shared/query.ts";
import { readableEventsOf } from "./common.ts";
import {
  type CodeRow,
  codesOfMarketers,
  codesOfTickets,
  eventCodesOfEvents,
  ticketCodesOfEvents,
} from "../store/codes.ts";

type Request = z.infer<typeof resolveRelatedRequestSchema>;

/** Linkage by parent id and the codes it links to, filled in parent by parent. */
interface Related {
  linkage: Record<string, Identifier[] | Identifier | null>;
  data: ResourceObject[];
}

function link(code: CodeRow): Identifier {
  return { type: codeDef.type, id: String(code.id) };
}

/** Links `parentId` to `codes` and includes them. */
function addCodes(related: Related, parentId: string, codes: CodeRow[]): void {
  related.linkage[parentId] = codes.map(link);
  related.data.push(...codes.map((code) => toResource(codeDef, code)));
}

export async function resolveRelatedCodes(
  ctx: DiscountsContext,
  { actor, parentType, relationship, parentIds, fields }: Request,
): Promise<Related> {
  checkFieldset(fields, codeDef.type, codeQuery.sparse![codeDef.type]);
  // Until the actor proves allowed, each parent links to nothing (nothing is included for it).
  const empty = relationship === "discount-code" ? null : [];
  const related: Related = {
    linkage: Object.fromEntries(parentIds.map((id) => [id, empty])),
    data: [],
  };
  if (!actor) return related;
  if (parentType === "ticket" && relationship === "discount-codes") {
    await ticketsCodes(ctx, actor, parentIds, related);
  } else if (parentType === "event" && relationship === "discount-codes") {
    await eventsCodes(ctx, actor, parentIds, related);
  } else if (parentType === "event" && relationship === "discount-code") {
    await eventsEventCode(ctx, actor, parentIds, related);
  } else if (parentType === "user" && relationship === "discount-codes") {
    await usersCodes(ctx, actor, parentIds, related);
  }
  return related;
}

/** The events the catalog found, by the id they were asked by. */
function found(events: ManyAccess["events"]): [string, EventAccess][] {
  return [...events].filter((entry): entry is [string, EventAccess] => entry[1] !== null);
}

/** A ticket's codes, for the co-organizers of its event. */
async function ticketsCodes(ctx: DiscountsContext, actor: Actor, ids: string[], related: Related) {
  const { tickets } = await ctx.bus.request(catalogInternal.tickets, { ids });
  if (!tickets.length) return;
  // One question to the catalog for every event, not a round trip each.
  const { caller, events } = await accessMany(ctx, actor, tickets.map((t) => t.eventId));
  const allowed = tickets.filter((t) => isCoorganizer(caller, events.get(t.eventId) ?? null));
  if (!allowed.length) return;
  // One statement for every allowed ticket, not one each.
  const codes = await codesOfTickets(ctx.sql, allowed.map((ticket) => ticket.id));
  for (const ticket of allowed) addCodes(related, ticket.id, codes.get(ticket.id) ?? []);
}

/** An event's ticket codes, for its co-organizers. */
async function eventsCodes(ctx: DiscountsContext, actor: Actor, ids: string[], related: Related) {
  const { caller, events } = await accessMany(ctx, actor, ids);
  const allowed = found(events).filter(([, event]) => isCoorganizer(caller, event));
  if (!allowed.length) return;
  // One statement for every allowed event, not one each.
  const codes = await ticketCodesOfEvents(ctx.sql, allowed.map(([, event]) => event.id));
  for (const [eventId, event] of allowed) addCodes(related, eventId, codes.get(event.id) ?? []);
}

/**
 * The codes a user created (as their marketer), for that user and admins; the user sees only
 * those of events they still co-organize (as `/v1/users/{id}/discount-codes`).
 */
async function usersCodes(ctx: DiscountsContext, actor: Actor, ids: string[], related: Related) {
  const { caller } = await access(ctx, actor);
  if (!caller) return;
  // An admin sees everyone's codes; anyone else only their own.
  const users = [...new Set(ids)].filter((id) => id === caller.id || isAdmin(caller));
  if (!users.length) return;
  // Undefined for an admin (every code); a non-admin's one user is themselves.
  const ofEvents = await readableEventsOf(ctx, { actor, caller, userId: caller.id });
  // One statement for every user, not one each (a page of users is an admin's).
  const codes = await codesOfMarketers(ctx.sql, users, { ofEvents });
  for (const userId of users) addCodes(related, userId, codes.get(userId) ?? []);
}

/** The event code applied to an event, for admins. */
async function eventsEventCode(
  ctx: DiscountsContext,
  actor: Actor,
  ids: string[],
  related: Related,
) {
  const { caller, events } = await accessMany(ctx, actor, ids);
  if (!isAdmin(caller)) return;
  const live = found(events);
  if (!live.length) return;
  // One statement for every event, not one each.
  const codes = await eventCodesOfEvents(ctx.sql, live.map(([, event]) => event.id));
  for (const [eventId, event] of live) {
    const code = codes.get(event.id);
    related.linkage[eventId] = code ? link(code) : null;
    if (code) related.data.push(toResource(codeDef, code));
  }
}
