/** The catalog's contract: users, login, roles, events, topics, tickets (api-surface §2–3). */
import {
  ADMIN_WRITES,
  busOperation,
  collection,
  defineContract,
  httpOperation,
  PUBLIC_READS,
  resolveOperation,
  SIGNED_IN_READS,
  SIGNED_IN_WRITES,
} from "../contract.ts";

const S = "catalog";
const publicReads = ["list", "get", "related", "relationship"] as const;

export const catalogContract = defineContract({
  service: S,
  description: "Users, roles, events, topics, tickets",
  types: [
    "user",
    "role",
    "users-events-role",
    "event",
    "event-topic",
    "event-sub-topic",
    "event-type",
    "ticket",
  ],
  touches: {
    /** `{id}` in an event's URLs is its id or its identifier: pages under either go stale. */
    event: (event) => typeof event.identifier === "string" ? [`event:${event.identifier}`] : [],
  },
  operations: {
    /**
     * The original answers login with plain JSON (`{"access_token"}`), not JSON:API, and serves
     * it under `/auth/session` too, without the version prefix: where open-event-frontend posts.
     */
    login: httpOperation("catalog.auth.login", "anyone", [
      { method: "POST", path: "/v1/auth/login" },
      { method: "POST", path: "/v1/auth/session" },
      { method: "POST", path: "/auth/session" },
    ], { media: "json", carriesSecrets: true, ignoresToken: true }),
    /**
     * The original's other auth endpoints its clients call (app/api/auth.py), plain JSON as
     * login, under `/v1/auth` only, as there. Its reset-password needs email: not served here.
     */
    "auth.fresh-login": httpOperation("catalog.auth.fresh-login", "signed-in", [
      { method: "POST", path: "/v1/auth/fresh-login" },
    ], { media: "json", carriesSecrets: true }),
    "auth.change-password": httpOperation("catalog.auth.change-password", "signed-in", [
      { method: "POST", path: "/v1/auth/change-password" },
    ], { media: "json", carriesSecrets: true }),
    "auth.logout": httpOperation("catalog.auth.logout", "anyone", [
      { method: "POST", path: "/v1/auth/logout" },
    ], { media: "json", ignoresToken: true }),
    ...collection(S, "users", {
      access: {
        list: "admin",
        create: "anyone",
        ...SIGNED_IN_READS,
        update: "signed-in",
        delete: "signed-in",
      },
      // The role lists are the original's (`/users/{id}/owner-events`, ...): the admin users
      // table of open-event-frontend reads them.
      related: [
        "events",
        "owner-events",
        "organizer-events",
        "coorganizer-events",
        "marketer-events",
        "users-events-roles",
      ],
      secrets: ["create", "update"],
    }),
    ...collection(S, "roles", { access: { list: "anyone", get: "anyone" } }),
    ...collection(S, "users-events-roles", {
      access: { ...SIGNED_IN_READS, ...SIGNED_IN_WRITES },
      related: ["user", "event", "role"],
    }),
    ...collection(S, "events", {
      access: { ...PUBLIC_READS, ...SIGNED_IN_WRITES },
      related: ["event-topic", "event-sub-topic", "tickets", "owner", "users-events-roles"],
      relatedAccess: { "users-events-roles": "signed-in" },
      cache: publicReads,
    }),
    ...collection(S, "event-topics", {
      access: { ...PUBLIC_READS, ...ADMIN_WRITES },
      related: ["events", "event-sub-topics"],
      cache: publicReads,
    }),
    ...collection(S, "event-sub-topics", {
      access: { ...PUBLIC_READS, ...ADMIN_WRITES },
      related: ["event-topic", "events"],
      cache: publicReads,
    }),
    // The original's event types, not kept here: an empty list, because open-event-frontend's
    // explore page reads it. One of them is a 404, as under any unknown path.
    ...collection(S, "event-types", { access: { list: "anyone" }, cache: ["list"] }),
    ...collection(S, "tickets", {
      access: { list: "admin", ...SIGNED_IN_READS, ...SIGNED_IN_WRITES },
      related: ["event"],
    }),
    resolve: resolveOperation(S),
    /**
     * Who the actor is and, when `event` (id or identifier) is given, that event and the actor's
     * roles on it. `event` is null when it does not exist, is deleted, or the actor may not see
     * it. Always fresh: a revoked role or admin flag counts on the next call. With `events` (up
     * to 1,000 ids or identifiers), each of them as `event` would be answered, in one round trip:
     * for the parents of an include.
     */
    "internal.access": busOperation("catalog.internal.access", "access"),
    /**
     * Which of the given event ids are live (they exist and are not in the trash), drafts
     * included, whoever asks: for a service deciding whether an old deletion still holds
     * (payments' replayed deletions).
     */
    "internal.live-events": busOperation("catalog.internal.live-events", "liveEvents"),
    /** Live tickets by id (unknown or deleted ones are left out). */
    "internal.tickets": busOperation("catalog.internal.tickets", "tickets"),
    /**
     * A page of the tickets or events among given ids (a discount code's), with the query and
     * rendering of the type's own lists: the related lists another service serves. A page too
     * large for the bus is the client's 400, as on those lists.
     */
    "internal.list": busOperation("catalog.internal.list", "listAmong", { readForClient: true }),
  },
});
