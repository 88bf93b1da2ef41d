/**
 * Schemas of what services ask each other over the bus (not reachable over HTTP): resolving
 * resources for cross-service `include`, the catalog's internal answers, redemptions.
 */
import { z } from "zod";
import { actorSchema } from "./http.ts";
import { ID_PATTERN } from "./ids.ts";

/** A resource object as JSON:API renders it (kept loose: it crosses the bus already built). */
export const resourceObjectSchema = z.object({
  type: z.string(),
  id: z.string(),
  attributes: z.record(z.string(), z.unknown()).optional(),
  relationships: z.record(z.string(), z.unknown()).optional(),
  links: z.record(z.string(), z.unknown()).optional(),
});

/** `<service>.resolve`: the resources of `type` with these ids that `actor` may see. */
export const resolveRequestSchema = z.object({
  actor: actorSchema.nullable(),
  type: z.string(),
  ids: z.array(z.string()).max(1000),
  /**
   * `include` paths of the owner's own relationships, for related-resource routes another service
   * serves (`/v1/discount-codes/{id}/event?include=event-topic`): an unknown one is a 400.
   */
  // As many as one `include` may go through (MAX_INCLUDED_RELATIONSHIPS, shared/query.ts, which
  // refuses more with a 400 before asking): below it, a valid query failed here, a 500.
  include: z.array(z.string()).max(40).optional(),
  /**
   * Sparse fieldsets (`fields[<type>]` -> names) the owner checks with the rules of the type's own
   * routes (an unknown name is a 400 naming `fields[<type>]`) and applies to `data` and `included`.
   */
  fields: z.record(z.string(), z.array(z.string())).optional(),
  /**
   * The client asked `get_trashed=true`: soft-deleted resources are found too, for admins only
   * (as the type's own routes show them to admins asking it); anyone else is answered as without.
   */
  trashed: z.boolean().optional(),
});
export const resolveReplySchema = z.object({
  data: z.array(resourceObjectSchema),
  /** What `include` asked for, as the actor may see it (the data carry its linkage). */
  included: z.array(resourceObjectSchema).optional(),
});

/**
 * `catalog.internal.list`: a page of the resources of `type` among `ids` that `actor` may see,
 * read with the list rules of that type's own routes from `query` (the raw query of a related
 * route another service serves, `/v1/discount-codes/{id}/tickets`: `filter`, `sort`, `page[...]`,
 * `include`, `fields[...]`, `get_trashed`; a bad one is their 400) and rendered as they render a
 * list, its links on `path`.
 */
export const listAmongRequestSchema = z.object({
  actor: actorSchema.nullable(),
  type: z.string(),
  ids: z.array(z.string()).max(1000),
  path: z.string(),
  query: z.record(z.string(), z.string()),
});
export const listAmongReplySchema = z.object({
  /** The list document: `data`, `links` (paging on `path`), `meta.count`, `included`. */
  document: z.object({ data: z.array(resourceObjectSchema) }).passthrough(),
  /** Resources of other services' types that `include` asked for (see `HttpReply`). */
  foreignIncludes: z.record(z.string(), z.array(z.string())).optional(),
  /** Relationships other services serve that `include` asked for (see `HttpReply`). */
  foreignRelations: z.array(z.object({
    parentType: z.string(),
    relationship: z.string(),
    parentIds: z.array(z.string()),
  })).optional(),
});

const identifierSchema = z.object({ type: z.string(), id: z.string() });

/** `<service>.resolve-related`: per parent id, the linkage and the related resources. */
export const resolveRelatedRequestSchema = z.object({
  actor: actorSchema.nullable(),
  parentType: z.string(),
  relationship: z.string(),
  parentIds: z.array(z.string()).max(1000),
  /** The request's sparse fieldsets: the owner checks those of its types (400) as `resolve` does. */
  fields: z.record(z.string(), z.array(z.string())).optional(),
  /**
   * The client asked `get_trashed=true`: an admin gets the relationships of soft-deleted parents
   * and the soft-deleted resources they link to, as the relationship's own route lists them with
   * it; anyone else is answered as without.
   */
  trashed: z.boolean().optional(),
});
export const resolveRelatedReplySchema = z.object({
  linkage: z.record(
    z.string(),
    z.union([z.array(identifierSchema), identifierSchema, z.null()]),
  ),
  data: z.array(resourceObjectSchema),
});

/** The caller as services other than the catalog see them. */
export const callerSchema = z.object({
  id: z.string(),
  email: z.string(),
  isAdmin: z.boolean(),
  isSuperAdmin: z.boolean(),
});

/** An event as other services need it for their rules. */
export const eventAccessSchema = z.object({
  id: z.string(),
  identifier: z.string(),
  state: z.enum(["draft", "published"]),
  canPayByStripe: z.boolean(),
  isStripeLinked: z.boolean(),
  /** The caller's roles on this event (empty for strangers and anonymous callers). */
  roles: z.array(z.enum(["owner", "organizer", "coorganizer"])),
});

/** Most events one access question may name (`events`): a page of the gateway's includes. */
export const ACCESS_EVENTS_MAX = 1000;

export const accessRequestSchema = z.object({
  actor: actorSchema.nullable(),
  event: z.string().max(64).optional(),
  /**
   * Several events at once (ids or identifiers), answered in the reply's `events`: the parents
   * of an include ask in one round trip, not one each.
   */
  events: z.array(z.string().max(64)).max(ACCESS_EVENTS_MAX).optional(),
});
export const accessReplySchema = z.object({
  caller: callerSchema.nullable(),
  event: eventAccessSchema.nullable(),
  /** With `events` asked: each key asked for, and that event as `event` would answer it. */
  events: z.record(z.string(), eventAccessSchema.nullable()).optional(),
});

export const ticketInfoSchema = z.object({
  id: z.string(),
  eventId: z.string(),
  type: z.enum(["free", "paid", "donation"]),
  /** Decimal string with two places, e.g. "12.50": money never travels as a float. */
  price: z.string(),
});

/** Event ids: which of them are live (exist, not in the trash), whoever asks. */
export const liveEventsRequestSchema = z.object({ ids: z.array(z.string().max(32)).max(1000) });
export const liveEventsReplySchema = z.object({ live: z.array(z.string()) });

export const ticketsRequestSchema = z.object({ ids: z.array(z.string().max(32)).max(1000) });
export const ticketsReplySchema = z.object({ tickets: z.array(ticketInfoSchema) });

const codeIdSchema = z.string().regex(ID_PATTERN, "must be a discount code id");
const orderIdSchema = z.string().min(1).max(128);

/** One order's hold on uses of one code. */
export const reservationSchema = z.object({
  orderId: z.string(),
  codeId: z.string(),
  /** Uses held: one use = one discounted ticket. */
  quantity: z.number().int(),
  state: z.enum(["reserved", "confirmed", "released"]),
});
export type Reservation = z.infer<typeof reservationSchema>;

/** Every redemption call answers with the reservation and the code's counters after it. */
export const redemptionAnswerSchema = z.object({
  reservation: reservationSchema,
  /** Held plus confirmed uses (the code's read-only `used-count`). */
  usedCount: z.number().int(),
  /** Uses left under `tickets-number`; null when the code is unlimited. */
  remaining: z.number().int().nullable(),
});
export type RedemptionAnswer = z.infer<typeof redemptionAnswerSchema>;

/** Who the fact of a redemption names as actor (the buyer); omitted or null: the system. */
const redemptionActor = z.object({ id: z.string(), email: z.string() }).nullable().optional();

export const reserveRequestSchema = z.object({
  codeId: codeIdSchema,
  orderId: orderIdSchema,
  quantity: z.number().int().min(1).max(1_000_000),
  actor: redemptionActor,
});
export const reservationRequestSchema = z.object({
  codeId: codeIdSchema,
  orderId: orderIdSchema,
  actor: redemptionActor,
});

/**
 * The schemas of each operation services offer each other, by the name its contract gives
 * (`busOperation` in shared/contract.ts): the serving service checks each request and answer.
 */
export const BUS_OPERATION_SCHEMAS = {
  resolve: { request: resolveRequestSchema, response: resolveReplySchema },
  resolveRelated: { request: resolveRelatedRequestSchema, response: resolveRelatedReplySchema },
  access: { request: accessRequestSchema, response: accessReplySchema },
  tickets: { request: ticketsRequestSchema, response: ticketsReplySchema },
  liveEvents: { request: liveEventsRequestSchema, response: liveEventsReplySchema },
  listAmong: { request: listAmongRequestSchema, response: listAmongReplySchema },
  reserve: { request: reserveRequestSchema, response: redemptionAnswerSchema },
  confirm: { request: reservationRequestSchema, response: redemptionAnswerSchema },
  release: { request: reservationRequestSchema, response: redemptionAnswerSchema },
};
