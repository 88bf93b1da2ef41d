/**
 * How catalog rows look on the wire (JSON:API resource definitions) and which query parameters
 * each list accepts (whitelisted client names -> columns).
 */
import type { Row } from "@shared/db.ts";
import type { ResourceDef } from "@shared/jsonapi.ts";
import type { QuerySpec } from "@shared/query.ts";

const isoOrNull = (value: unknown) => value instanceof Date ? value.toISOString() : value ?? null;
/** Attributes the original's clients read but our design has no state for (README, differences). */
const alwaysNull = () => null;
const alwaysFalse = () => false;
const alwaysTrue = () => true;

/** Image attributes of the original (we store no images): always null. */
const images = (...names: string[]) => Object.fromEntries(names.map((name) => [name, alwaysNull]));
/** A user's pictures, in both the full and the public view. */
const USER_IMAGES = images(
  "avatar-url",
  "original-image-url",
  "thumbnail-image-url",
  "small-image-url",
  "icon-image-url",
);

export const userDef: ResourceDef<Row> = {
  type: "user",
  collection: "users",
  attributes: {
    "email": "email",
    "first-name": "first_name",
    "last-name": "last_name",
    "is-admin": "is_admin",
    "is-super-admin": "is_super_admin",
    "is-sales-admin": alwaysFalse,
    "is-marketer": alwaysFalse,
    // No email verification here, so every account counts as verified: open-event-frontend
    // disables the order button and shows a "verify your email" banner for anyone who is not.
    "is-verified": alwaysTrue,
    // The last login (the original stamped every authenticated request): the user and admins only.
    "last-accessed-at": "last_accessed_at",
    "created-at": "created_at",
    "deleted-at": "deleted_at",
    ...USER_IMAGES,
  },
  relationships: {
    "events": { type: "event", many: true },
    "owner-events": { type: "event", many: true },
    "organizer-events": { type: "event", many: true },
    "coorganizer-events": { type: "event", many: true },
    "marketer-events": { type: "event", many: true },
    "users-events-roles": { type: "users-events-role", many: true },
    "discount-codes": { type: "discount-code", many: true },
  },
};

/**
 * A user's event lists and the role the user holds on their events (`"any"`: some role). The
 * original's `marketer-events` were events of its "Marketer" system role (and its route filtered
 * event roles by a role named so, which it never had); this rebuild has no such role (a user's
 * `is-marketer` is always false), so that list is always empty: `null`.
 */
export const USER_EVENT_LISTS: Readonly<Record<string, string | null>> = {
  "events": "any",
  "owner-events": "owner",
  "organizer-events": "organizer",
  "coorganizer-events": "coorganizer",
  "marketer-events": null,
};

/** The role a user's event list `list` asks for, as the store takes it (`undefined`: any). */
export const roleOfList = (list: string): string | null | undefined => {
  const role = USER_EVENT_LISTS[list];
  return role === "any" ? undefined : role;
};

/** Other people see a user's name only: emails and flags are not public. */
export const publicUserDef: ResourceDef<Row> = {
  ...userDef,
  attributes: {
    "first-name": "first_name",
    "last-name": "last_name",
    ...USER_IMAGES,
  },
};

export const roleDef: ResourceDef<Row> = {
  type: "role",
  collection: "roles",
  // Roles are fixed rows, never deleted.
  attributes: { "name": "name", "title-name": "title_name", "deleted-at": alwaysNull },
};

export const usersEventsRoleDef: ResourceDef<Row> = {
  type: "users-events-role",
  collection: "users-events-roles",
  attributes: { "created-at": "created_at" },
  relationships: {
    "user": { type: "user", key: "user_id" },
    "event": { type: "event", key: "event_id" },
    "role": { type: "role", key: "role_name" },
  },
};

/**
 * The original's event relationships this rebuild has no resources for (sessions, speakers, tax,
 * ...) or shows another way (`organizers`, `coorganizers`: `users-events-roles`, for the event's
 * co-organizers), as placeholders (see `RelationshipDef.placeholder`): open-event-frontend
 * includes several on its home, explore and event pages (`include=event-topic,event-sub-topic,
 * event-type,speakers-call`, ...), which a 400 failed whole; included, each shows empty linkage.
 */
/** Each by name, with the type the original gave it (events.py's `type_`). */
const LEFT_OUT_TO_ONE: Record<string, string> = {
  "event-copyright": "event-copyright",
  "event-orga": "event-orga",
  "event-type": "event-type",
  "speakers-call": "speakers-call",
  "tax": "tax",
};
const LEFT_OUT_TO_MANY: Record<string, string> = {
  "access-codes": "access-code",
  "attendees": "attendee",
  "coorganizers": "user",
  "custom-forms": "custom-form",
  "event-invoices": "event-invoice",
  "faq-types": "faq_type",
  "faqs": "faq",
  "feedbacks": "feedback",
  "microlocations": "microlocation",
  "moderators": "user",
  "orders": "order",
  "organizers": "user",
  "registrars": "user",
  "role-invites": "role-invite",
  "session-types": "session-type",
  "sessions": "session",
  "social-links": "social-link",
  "speakers": "speaker",
  "sponsors": "sponsor",
  "ticket-tags": "ticket-tag",
  "track-organizers": "user",
  "tracks": "track",
};
/** Their names, for `include` on events. */
export const EVENT_RELATIONSHIPS_LEFT_OUT: readonly string[] = [
  ...Object.keys(LEFT_OUT_TO_ONE),
  ...Object.keys(LEFT_OUT_TO_MANY),
];
const leftOut = Object.fromEntries([
  ...Object.entries(LEFT_OUT_TO_ONE).map(([name, type]) => [
    name,
    { type, placeholder: true } as const,
  ]),
  ...Object.entries(LEFT_OUT_TO_MANY).map(([name, type]) => [
    name,
    { type, many: true, placeholder: true } as const,
  ]),
]);

export const eventDef: ResourceDef<Row> = {
  type: "event",
  collection: "events",
  attributes: {
    "identifier": "identifier",
    "name": "name",
    "description": "description",
    "location-name": "location_name",
    "starts-at": (row) => isoOrNull(row.starts_at),
    "ends-at": (row) => isoOrNull(row.ends_at),
    "timezone": "timezone",
    "state": "state",
    "privacy": "privacy",
    "can-pay-by-stripe": "can_pay_by_stripe",
    "is-stripe-linked": "is_stripe_linked",
    "payment-currency": "payment_currency",
    "created-at": "created_at",
    "deleted-at": "deleted_at",
    "external-event-url": alwaysNull,
    "is-event-online": alwaysFalse,
    "is-featured": alwaysFalse,
    // No sessions, speakers or calls for speakers here: never open.
    "is-sessions-speakers-enabled": alwaysFalse,
    ...images(
      "logo-url",
      "original-image-url",
      "thumbnail-image-url",
      "large-image-url",
      "icon-image-url",
    ),
  },
  relationships: {
    "event-topic": { type: "event-topic", key: "event_topic_id" },
    "event-sub-topic": { type: "event-sub-topic", key: "event_sub_topic_id" },
    "owner": { type: "user", key: "owner_id" },
    "tickets": { type: "ticket", many: true },
    "users-events-roles": { type: "users-events-role", many: true },
    "discount-codes": { type: "discount-code", many: true },
    "discount-code": { type: "discount-code" },
    "stripe-authorization": { type: "stripe-authorization" },
    ...leftOut,
  },
};

export const eventTopicDef: ResourceDef<Row> = {
  type: "event-topic",
  collection: "event-topics",
  attributes: {
    "name": "name",
    "slug": "slug",
    "system-image-url": "system_image_url",
    "created-at": "created_at",
    "deleted-at": "deleted_at",
  },
  relationships: {
    "events": { type: "event", many: true },
    "event-sub-topics": { type: "event-sub-topic", many: true },
  },
};

export const eventSubTopicDef: ResourceDef<Row> = {
  type: "event-sub-topic",
  collection: "event-sub-topics",
  attributes: {
    "name": "name",
    "slug": "slug",
    "created-at": "created_at",
    "deleted-at": "deleted_at",
  },
  relationships: {
    "event-topic": { type: "event-topic", key: "event_topic_id" },
    "events": { type: "event", many: true },
  },
};

/**
 * The original's event types, which this rebuild does not keep: its list is served empty
 * (open-event-frontend's explore page lists them), so no row is ever rendered with this.
 */
export const eventTypeDef: ResourceDef<Row> = {
  type: "event-type",
  collection: "event-types",
  attributes: { "name": "name", "slug": "slug", "deleted-at": "deleted_at" },
};

export const ticketDef: ResourceDef<Row> = {
  type: "ticket",
  collection: "tickets",
  attributes: {
    "name": "name",
    "description": "description",
    "type": "type",
    // numeric(12,2) arrives as a string; clients expect a number.
    "price": (row) => row.price === null ? null : Number(row.price),
    "quantity": "quantity",
    "sales-starts-at": (row) => isoOrNull(row.sales_starts_at),
    "sales-ends-at": (row) => isoOrNull(row.sales_ends_at),
    "created-at": "created_at",
    "deleted-at": "deleted_at",
    // No hidden tickets and no per-order limits beyond the stock: what the original's order
    // form reads, derived.
    "is-hidden": alwaysFalse,
    "min-order": () => 1,
    "max-order": "quantity",
  },
  relationships: {
    "event": { type: "event", key: "event_id" },
    "discount-codes": { type: "discount-code", many: true },
  },
};

const created = { column: "created_at", type: "datetime" } as const;
const deleted = { column: "deleted_at", type: "datetime" } as const;
/**
 * Attributes the original's schemas declared write-only (load_only): taken by writes, never shown.
 * Its fieldsets were checked against declared names, so a fieldset may name them; they select
 * nothing.
 */
const WRITE_ONLY: Record<string, string[]> = { user: ["password"] };
const sparse = (def: ResourceDef<Row>) => ({
  [def.type]: [
    ...Object.keys(def.attributes),
    ...Object.keys(def.relationships ?? {}),
    ...(WRITE_ONLY[def.type] ?? []),
  ],
});
const trash = ["get_trashed"];

const id = { column: "id", type: "bigint" } as const;

export const userQuery: QuerySpec = {
  fields: {
    "id": id,
    "email": { column: "email", type: "string", caseless: true },
    "first-name": { column: "first_name", type: "string" },
    "last-name": { column: "last_name", type: "string" },
    "is-admin": { column: "is_admin", type: "boolean" },
    "is-super-admin": { column: "is_super_admin", type: "boolean" },
    "is-verified": { column: "is_verified", type: "boolean" },
    "last-accessed-at": { column: "last_accessed_at", type: "datetime" },
    "created-at": created,
    "deleted-at": deleted,
    // Constants (0008_user_role_constants.sql), filtered and sorted as every attribute shown.
    "is-sales-admin": { column: "is_sales_admin", type: "boolean" },
    "is-marketer": { column: "is_marketer", type: "boolean" },
    "avatar-url": { column: "avatar_url", type: "string" },
    "original-image-url": { column: "original_image_url", type: "string" },
    "thumbnail-image-url": { column: "thumbnail_image_url", type: "string" },
    "small-image-url": { column: "small_image_url", type: "string" },
    "icon-image-url": { column: "icon_image_url", type: "string" },
  },
  // `discount-codes` is served by discounts; the gateway fetches it.
  includes: [...Object.keys(USER_EVENT_LISTS), "users-events-roles", "discount-codes"],
  sparse: {
    "discount-code": ["*"],
    ...sparse(userDef),
    ...sparse(eventDef),
    ...sparse(usersEventsRoleDef),
  },
  extra: trash,
};

/** Three fixed roles; their name is their id. */
export const roleQuery: QuerySpec = {
  fields: {
    "id": { column: "name", type: "string" },
    "name": { column: "name", type: "string" },
    "title-name": { column: "title_name", type: "string" },
    // Always null (0008_user_role_constants.sql): roles are fixed.
    "deleted-at": { column: "deleted_at", type: "datetime" },
  },
  sparse: sparse(roleDef),
  defaultSort: [{ column: "name", desc: false }],
};

export const usersEventsRoleQuery: QuerySpec = {
  fields: { "id": id, "created-at": created },
  includes: ["user", "event", "role"],
  sparse: { ...sparse(usersEventsRoleDef), ...sparse(userDef), ...sparse(roleDef) },
  // A grant on a trashed event is the trash's (its includes read it so too).
  extra: trash,
};

// The filterable attributes of topics, sub-topics and tickets: their own lists', and what a
// filter through an event's relationship to them may name.
const eventTopicFields: QuerySpec["fields"] = {
  "id": id,
  "name": { column: "name", type: "string" },
  "system-image-url": { column: "system_image_url", type: "string" },
  "slug": { column: "slug", type: "string" },
  "created-at": created,
  "deleted-at": deleted,
};
const eventSubTopicFields: QuerySpec["fields"] = {
  "id": id,
  "name": { column: "name", type: "string" },
  "slug": { column: "slug", type: "string" },
  "created-at": created,
  "deleted-at": deleted,
};
const ticketFields: QuerySpec["fields"] = {
  "id": id,
  "name": { column: "name", type: "string" },
  "description": { column: "description", type: "string" },
  "type": { column: "type", type: "string" },
  "price": { column: "price", type: "number" },
  "quantity": { column: "quantity", type: "integer" },
  "sales-starts-at": { column: "sales_starts_at", type: "datetime" },
  "sales-ends-at": { column: "sales_ends_at", type: "datetime" },
  "created-at": created,
  "deleted-at": deleted,
  // Derived (0006_ticket_constants.sql), filtered and sorted as every attribute shown.
  "is-hidden": { column: "is_hidden", type: "boolean" },
  "min-order": { column: "min_order", type: "integer" },
  "max-order": { column: "quantity", type: "integer" },
};

// The original's event type attributes (app/api/schema/event_types.py): what its list, and a
// filter through an event's `event-type`, may name, though no event type is kept here.
const eventTypeFields: QuerySpec["fields"] = {
  "id": id,
  "name": { column: "name", type: "string" },
  "slug": { column: "slug", type: "string" },
  "deleted-at": deleted,
};

export const eventQuery: QuerySpec = {
  fields: {
    "id": id,
    "name": { column: "name", type: "string" },
    "description": { column: "description", type: "string" },
    "identifier": { column: "identifier", type: "string" },
    "starts-at": { column: "starts_at", type: "datetime" },
    "ends-at": { column: "ends_at", type: "datetime" },
    "timezone": { column: "timezone", type: "string" },
    "state": { column: "state", type: "string" },
    "privacy": { column: "privacy", type: "string" },
    "location-name": { column: "location_name", type: "string" },
    "can-pay-by-stripe": { column: "can_pay_by_stripe", type: "boolean" },
    "is-stripe-linked": { column: "is_stripe_linked", type: "boolean" },
    "payment-currency": { column: "payment_currency", type: "string" },
    "created-at": created,
    "deleted-at": deleted,
    // Constants (0005_event_constants.sql), filtered and sorted as every attribute shown.
    "external-event-url": { column: "external_event_url", type: "string" },
    "is-event-online": { column: "is_event_online", type: "boolean" },
    "is-featured": { column: "is_featured", type: "boolean" },
    // Explore's call-for-speakers filter (0009_call_for_speakers.sql): always false.
    "is-sessions-speakers-enabled": { column: "is_sessions_speakers_enabled", type: "boolean" },
    "logo-url": { column: "logo_url", type: "string" },
    "original-image-url": { column: "original_image_url", type: "string" },
    "thumbnail-image-url": { column: "thumbnail_image_url", type: "string" },
    "large-image-url": { column: "large_image_url", type: "string" },
    "icon-image-url": { column: "icon_image_url", type: "string" },
  },
  // The explore page filters by topic name, sub-topic slug and ticket type (`has`, `any`). Only
  // the catalog's own tables: an event's discount codes live in another service. Topics and
  // tickets are seen by whoever sees the event, so only their trash needs hiding.
  relationships: {
    "event-topic": {
      many: false,
      table: "event_topics",
      on: { parent: "events.event_topic_id", related: "event_topics.id" },
      fields: eventTopicFields,
      softDeleted: true,
    },
    "event-sub-topic": {
      many: false,
      table: "event_sub_topics",
      on: { parent: "events.event_sub_topic_id", related: "event_sub_topics.id" },
      fields: eventSubTopicFields,
      softDeleted: true,
    },
    "tickets": {
      many: true,
      table: "tickets",
      on: { parent: "events.id", related: "tickets.event_id" },
      fields: ticketFields,
      softDeleted: true,
    },
    // Explore's type filter: no event has a type here, so it matches none (and `not` all).
    "event-type": { many: false, table: null, fields: eventTypeFields },
  },
  // The three after the roles are served by discounts and payments; the gateway fetches them.
  includes: [
    "event-topic",
    "event-sub-topic",
    "tickets",
    "owner",
    "users-events-roles",
    "discount-codes",
    "discount-code",
    "stripe-authorization",
    ...EVENT_RELATIONSHIPS_LEFT_OUT,
  ],
  sparse: {
    // Trimmed by the gateway, which adds them from their own services.
    "discount-code": ["*"],
    "stripe-authorization": ["*"],
    ...sparse(eventDef),
    ...sparse(eventTopicDef),
    ...sparse(eventSubTopicDef),
    ...sparse(ticketDef),
    ...sparse(userDef),
    ...sparse(usersEventsRoleDef),
  },
  extra: trash,
};

export const eventTopicQuery: QuerySpec = {
  fields: eventTopicFields,
  includes: ["events", "event-sub-topics"],
  sparse: { ...sparse(eventTopicDef), ...sparse(eventSubTopicDef), ...sparse(eventDef) },
  extra: trash,
};

export const eventSubTopicQuery: QuerySpec = {
  fields: eventSubTopicFields,
  includes: ["event-topic", "events"],
  sparse: { ...sparse(eventSubTopicDef), ...sparse(eventTopicDef), ...sparse(eventDef) },
  extra: trash,
};

/** The empty list of event types reads its query as every list does. */
export const eventTypeQuery: QuerySpec = {
  fields: eventTypeFields,
  sparse: sparse(eventTypeDef),
  extra: trash,
};

export const ticketQuery: QuerySpec = {
  fields: ticketFields,
  includes: ["event", "discount-codes"],
  sparse: {
    "discount-code": ["*"],
    ...sparse(ticketDef),
    ...sparse(eventDef),
  },
  extra: trash,
};

/** Each catalog type's query rules, for routes whose primary data is of that type. */
export const querySpecs: Record<string, QuerySpec> = {
  "user": userQuery,
  "role": roleQuery,
  "users-events-role": usersEventsRoleQuery,
  "event": eventQuery,
  "event-topic": eventTopicQuery,
  "event-sub-topic": eventSubTopicQuery,
  "ticket": ticketQuery,
};

/**
 * How many relationships a dotted include path may go through (`tickets.event.event-topic`: 3).
 * The original set no limit; three reach everything the catalog links, and keep each spec's
 * list of paths, and the work one request can ask for, bounded.
 */
const INCLUDE_DEPTH = 3;

/** The catalog's resource definitions by type, as dotted include paths walk them. */
const defsByType: Record<string, ResourceDef<Row>> = {
  "user": userDef,
  "role": roleDef,
  "users-events-role": usersEventsRoleDef,
  "event": eventDef,
  "event-topic": eventTopicDef,
  "event-sub-topic": eventSubTopicDef,
  "ticket": ticketDef,
};

/**
 * The include names of `type` a dotted path may go on through: its catalog relationships and
 * placeholders. A relationship another service serves (`discount-codes`) is included by the
 * gateway at the first level only, so a path through or to it further in is a 400.
 */
function localIncludes(type: string): string[] {
  const def = defsByType[type];
  return (querySpecs[type].includes ?? []).filter((name) => {
    const relationship = def.relationships?.[name];
    return relationship && (relationship.placeholder || relationship.type in defsByType);
  });
}

/** Dotted paths from `type` (`tickets.event`, ...), `depth` relationships long at most. */
function dottedPaths(type: string, depth: number): string[] {
  if (depth < 2) return [];
  const paths: string[] = [];
  for (const name of querySpecs[type].includes ?? []) {
    const relationship = defsByType[type].relationships?.[name];
    if (!relationship || relationship.placeholder || !(relationship.type in defsByType)) continue;
    const next = relationship.type;
    for (const rest of [...localIncludes(next), ...dottedPaths(next, depth - 1)]) {
      paths.push(`${name}.${rest}`);
    }
  }
  return paths;
}

/** The types a dotted path reaches past its first name, whose fieldsets the route must take. */
function typesAlong(type: string, path: string): string[] {
  const types: string[] = [];
  for (const name of path.split(".")) {
    type = defsByType[type].relationships![name].type;
    types.push(type);
  }
  return types;
}

// Every spec takes the dotted paths through the catalog's own resources, and `fields[<type>]`
// for each type they reach. A user's fieldset may name every user attribute, wherever users are
// included: who sees which is decided where each user is built (others' emails are left out,
// as fields the caller may not see), not by refusing the name (the original's public user schema
// took `email` too). (All are found before any spec is extended: each walk reads the others'
// first-level names.)
const dottedByType = Object.entries(querySpecs).map(([type, spec]) =>
  [type, spec, dottedPaths(type, INCLUDE_DEPTH)] as const
);
for (const [type, spec, dotted] of dottedByType) {
  spec.includes = [...spec.includes ?? [], ...dotted];
  for (const reached of new Set(dotted.flatMap((path) => typesAlong(type, path)))) {
    const def = defsByType[reached];
    if (def && !spec.sparse?.[reached]) spec.sparse = { ...spec.sparse, ...sparse(def) };
  }
}
