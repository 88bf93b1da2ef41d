/**
 * `discounts.resolve-related`: an event's `discount-codes` (its ticket codes, for its
 * co-organizers and admins) and `discount-code` (the event code applied to it, for admins), and a
 * ticket's `discount-codes` (for the co-organizers of its event), and a user's `discount-codes`
 * (those they created, for admins and that user: theirs of events they still co-organize), for
 * `include` on events, tickets and users. Where the actor may not manage the codes, the linkage
 * is empty (`[]` or `null`), matching what is included for that parent (nothing): the document
 * stays fully linked. With `trashed` (the client asked `get_trashed=true`) an admin gets them as
 * the relationships' own routes list them with it: soft-deleted codes too, and those of parents in
 * the trash (`codesWithTrash`).
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
  { actor, parentType, relationship, parentIds, fields, trashed }: Request,
): Promise<Related> {
  checkFieldset(fields, codeDef.type, codeQuery.sparse![codeDef.type]);
  // Until the actor proves allowed, each parent links to nothing (nothing is included for it).
  const empty = relationship === "discount-code" ? null : [];
  const related: Related = {
    linkage: Object.fromEntries(parentIds.map((id) => [id, empty])),
    data: [],
  };
  if (!actor) return related;
  if (trashed && isAdmin((await access(ctx, actor)).caller)) {
    await codesWithTrash(ctx, { parentType, relationship, parentIds }, related);
    return related;
  }
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

/**
 * An admin asking for the trash: each parent's codes, soft-deleted ones too, as
 * `/v1/{events,tickets,users}/{id}/discount-codes?get_trashed=true` lists them, parents in the trash
 * included (the catalog showed them to the admin, who may see every code: no role is asked). An
 * event's event code stays the live one applied to it, as `/v1/events/{id}/discount-code` shows it
 * (none on a deleted event: its deletion un-applied it). Until 2026-12-05 the include ignored
 * `get_trashed` and a trashed parent linked nothing (found by a review).
 */
async function codesWithTrash(
  ctx: DiscountsContext,
  { parentType, relationship, parentIds }: Omit<Request, "actor">,
  related: Related,
) {
  const ids = [...new Set(parentIds)];
  const trash = { withTrashed: true };
  const readers: Record<string, () => Promise<Map<string, CodeRow[]>>> = {
    "ticket.discount-codes": () => codesOfTickets(ctx.sql, ids, trash),
    "event.discount-codes": () => ticketCodesOfEvents(ctx.sql, ids, trash),
    "user.discount-codes": () => codesOfMarketers(ctx.sql, ids, trash),
  };
  const read = readers[`${parentType}.${relationship}`];
  if (read) {
    const codes = await read();
    for (const id of ids) addCodes(related, id, codes.get(id) ?? []);
  } else if (parentType === "event" && relationship === "discount-code") {
    const codes = await eventCodesOfEvents(ctx.sql, ids);
    for (const [eventId, code] of codes) {
      related.linkage[eventId] = link(code);
      related.data.push(toResource(codeDef, code));
    }
  }
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
