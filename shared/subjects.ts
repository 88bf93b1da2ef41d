/**
 * Every bus subject in one file (without the bus prefix, which `Bus.subject` adds). The gateway
 * maps routes to these; services serve them.
 *
 * @example
 * ```ts
 * import { catalog } from "@shared/subjects.ts";
 * console.log(catalog.eventTopics.list.subject); // "catalog.event-topics.list"
 * ```
 */
import { z } from "zod";
import { defineEndpoint, type Endpoint, httpEndpoint } from "./bus.ts";
import { actorSchema } from "./schemas/http.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";

type HttpEndpoint = Endpoint<HttpRequest, HttpReply>;

/** The HTTP-mapped endpoints of one collection, e.g. `/v1/events`. */
export interface ResourceEndpoints {
  list: HttpEndpoint;
  create: HttpEndpoint;
  get: HttpEndpoint;
  update: HttpEndpoint;
  delete: HttpEndpoint;
  /** `GET /v1/<collection>/{id}/<rel>`; the gateway passes `params.rel`. */
  related: HttpEndpoint;
  /** `GET /v1/<collection>/{id}/relationships/<rel>`; the gateway passes `params.rel`. */
  relationship: HttpEndpoint;
}

function resourceEndpoints(service: string, collection: string): ResourceEndpoints {
  const at = (action: string) => httpEndpoint(`${service}.${collection}.${action}`);
  return {
    list: at("list"),
    create: at("create"),
    get: at("get"),
    update: at("update"),
    delete: at("delete"),
    related: at("related"),
    relationship: at("relationship"),
  };
}

/** A resource object as JSON:API renders it (kept loose: it crosses the bus already built). */
export const resourceObjectSchema = z.object({
  type: z.string(),
  id: z.string(),
  attributes: z.record(z.string(), z.unknown()).optional(),
  relationships: z.record(z.string(), z.unknown()).optional(),
  links: z.record(z.string(), z.unknown()).optional(),
});

/**
 * Each service answers `<service>.resolve`: the resources of `type` with these ids that `actor`
 * may see (invisible or unknown ones are left out). The gateway uses it to build compound
 * documents whose `include` crosses services.
 */
export function resolveEndpoint(service: string) {
  return defineEndpoint(
    `${service}.resolve`,
    z.object({
      actor: actorSchema.nullable(),
      type: z.string(),
      ids: z.array(z.string()).max(1000),
    }),
    z.object({ data: z.array(resourceObjectSchema) }),
  );
}

export const catalog = {
  service: "catalog",
  login: httpEndpoint("catalog.auth.login"),
  users: resourceEndpoints("catalog", "users"),
  roles: resourceEndpoints("catalog", "roles"),
  usersEventsRoles: resourceEndpoints("catalog", "users-events-roles"),
  events: resourceEndpoints("catalog", "events"),
  eventTopics: resourceEndpoints("catalog", "event-topics"),
  eventSubTopics: resourceEndpoints("catalog", "event-sub-topics"),
  tickets: resourceEndpoints("catalog", "tickets"),
  resolve: resolveEndpoint("catalog"),
} as const;

/** Which service owns each JSON:API type (for cross-service `include`). */
export const typeOwners: Record<string, string> = {
  "user": "catalog",
  "role": "catalog",
  "users-events-role": "catalog",
  "event": "catalog",
  "event-topic": "catalog",
  "event-sub-topic": "catalog",
  "ticket": "catalog",
  "discount-code": "discounts",
  "stripe-authorization": "payments",
  "activity": "audit",
};

/** The services `/health` expects to find on the bus. */
export const serviceNames = ["catalog"] as const;

/** Stream and subjects of facts: `<prefix>.facts.<service>.<type>.<verb>`. */
export const facts = {
  stream: (prefix: string) => `${prefix.replaceAll(/[^A-Za-z0-9_-]/g, "_").toUpperCase()}_FACTS`,
  subject: (service: string, type: string, verb: string) => `facts.${service}.${type}.${verb}`,
  all: "facts.>",
};
