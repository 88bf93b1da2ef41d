/** The catalog's contract: users, login, roles, events, topics, tickets (api-surface §2–3). */
import {
  busOperation,
  collection,
  defineContract,
  httpOperation,
  resolveOperation,
} from "../contract.ts";
import {
  accessReplySchema,
  accessRequestSchema,
  ticketsReplySchema,
  ticketsRequestSchema,
} from "../schemas/bus.ts";

const S = "catalog";
const publicReads = ["list", "get", "related", "relationship"] as const;

export const catalogContract = defineContract({
  service: S,
  description: "Users, roles, events, topics, tickets",
  types: ["user", "role", "users-events-role", "event", "event-topic", "event-sub-topic", "ticket"],
  touches: {
    /** `{id}` in an event's URLs is its id or its identifier: pages under either go stale. */
    event: (event) => typeof event.identifier === "string" ? [`event:${event.identifier}`] : [],
  },
  operations: {
    /** The original answers login with plain JSON (`{"access_token"}`), not JSON:API. */
    login: httpOperation("catalog.auth.login", "anyone", [
      { method: "POST", path: "/v1/auth/login" },
      { method: "POST", path: "/v1/auth/session" },
    ], { media: "json" }),
    ...collection(S, "users", {
      access: {
        list: "admin",
        create: "anyone",
        get: "signed-in",
        update: "signed-in",
        delete: "signed-in",
        related: "signed-in",
        relationship: "signed-in",
      },
      related: ["events", "users-events-roles"],
    }),
    ...collection(S, "roles", { access: { list: "anyone", get: "anyone" } }),
    ...collection(S, "users-events-roles", {
      access: {
        create: "signed-in",
        get: "signed-in",
        update: "signed-in",
        delete: "signed-in",
        related: "signed-in",
        relationship: "signed-in",
      },
      related: ["user", "event", "role"],
    }),
    ...collection(S, "events", {
      access: {
        list: "anyone",
        create: "signed-in",
        get: "anyone",
        update: "signed-in",
        delete: "signed-in",
        related: "anyone",
        relationship: "anyone",
      },
      related: ["event-topic", "event-sub-topic", "tickets", "owner", "users-events-roles"],
      relatedAccess: { "users-events-roles": "signed-in" },
      cache: publicReads,
    }),
    ...collection(S, "event-topics", {
      access: {
        list: "anyone",
        create: "admin",
        get: "anyone",
        update: "admin",
        delete: "admin",
        related: "anyone",
        relationship: "anyone",
      },
      related: ["events", "event-sub-topics"],
      cache: publicReads,
    }),
    ...collection(S, "event-sub-topics", {
      access: {
        list: "anyone",
        create: "admin",
        get: "anyone",
        update: "admin",
        delete: "admin",
        related: "anyone",
        relationship: "anyone",
      },
      related: ["event-topic", "events"],
      cache: publicReads,
    }),
    ...collection(S, "tickets", {
      access: {
        list: "admin",
        create: "signed-in",
        get: "signed-in",
        update: "signed-in",
        delete: "signed-in",
        related: "signed-in",
        relationship: "signed-in",
      },
      related: ["event"],
    }),
    resolve: resolveOperation(S),
    /**
     * Who the actor is and, when `event` (id or identifier) is given, that event and the actor's
     * roles on it. `event` is null when it does not exist, is deleted, or the actor may not see
     * it. Always fresh: a revoked role or admin flag counts on the next call.
     */
    "internal.access": busOperation(
      "catalog.internal.access",
      accessRequestSchema,
      accessReplySchema,
    ),
    /** Live tickets by id (unknown or deleted ones are left out). */
    "internal.tickets": busOperation(
      "catalog.internal.tickets",
      ticketsRequestSchema,
      ticketsReplySchema,
    ),
  },
});
