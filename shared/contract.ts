/**
 * A service's contract: every operation it offers, declared once. Each operation names its bus
 * endpoint (subject and schemas), the HTTP routes the gateway mounts for it, who may call it, the
 * media type it speaks and whether anonymous reads may be shared by caches. The gateway mounts its
 * routes by iterating the contracts (gateway/routes.ts); a service binds one handler per operation
 * key (`bindOperations`); the ownership tables and the service list derive from them
 * (shared/contracts/mod.ts).
 *
 * @example
 * ```ts
 * import { collection, defineContract } from "@shared/contract.ts";
 * const contract = defineContract({
 *   service: "library",
 *   description: "Books",
 *   types: ["book"],
 *   operations: {
 *     ...collection("library", "books", { access: { list: "anyone", get: "anyone" }, cache: ["list", "get"] }),
 *   },
 * });
 * console.log(contract.operations["books.list"].endpoint.subject); // "library.books.list"
 * ```
 */
import {
  defineEndpoint,
  type Endpoint,
  type EndpointSchemas,
  type Handler,
  httpEndpoint,
  type Route,
  route,
} from "./bus_endpoints.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";
import { declareTouches, type EndpointCache, type Touches } from "./cache_tags.ts";
import type { z } from "zod";

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

/**
 * Who may call an operation. The service enforces it (with the finer role rules of
 * api-surface.md); the contract says it for readers and for the test that checks every route
 * (gateway/contract_test.ts).
 * - `anyone`: no credentials needed (answers may still depend on them, e.g. drafts);
 * - `signed-in`: a valid token, then the service's role rules on the resource (401 without one);
 * - `admin`: is-admin or is-super-admin (401 without a token, 403 for other users);
 * - `stripe`: Stripe, proved by the `Stripe-Signature` header;
 * - `services`: other services over the bus only; no HTTP route.
 */
export type Access = "anyone" | "signed-in" | "admin" | "stripe" | "services";

/**
 * What the route speaks: `jsonapi` (JSON:API in and out), `json` (plain JSON in and out, as the
 * original's login and price preview), `signed-json` (plain JSON forwarded as raw bytes with the
 * headers its signature needs, for webhooks).
 */
export type Media = "jsonapi" | "json" | "signed-json";

/** One HTTP route of an operation; several routes may share one operation (`params.rel`). */
export interface HttpRoute {
  method: Method;
  /** A Hono path, e.g. `/v1/events/:id/tickets`. */
  path: string;
  /** Fixed parameters added to the path's own, e.g. `{ rel: "tickets" }`. */
  params?: Readonly<Record<string, string>>;
  /** Who may call this route when it differs from its operation (one relationship of many). */
  access?: Access;
}

/** Who may call `route` of `operation`. */
export function accessOf(operation: Operation, route: HttpRoute): Access {
  return route.access ?? operation.access;
}

/** Whether anonymous GETs of `route` may be kept and shared by the gateway's cache. */
export function sharedByCaches(operation: Operation, route: HttpRoute): boolean {
  return operation.cache === "public" && route.method === "GET" &&
    accessOf(operation, route) === "anyone";
}

// deno-lint-ignore no-explicit-any -- a contract mixes request and reply types (see Route in bus.ts)
export interface Operation<Req = any, Res = any> {
  readonly endpoint: Endpoint<Req, Res>;
  readonly access: Access;
  /** Empty for bus-only operations. */
  readonly routes: readonly HttpRoute[];
  readonly media: Media;
  /** Request headers (lower case) a `signed-json` route forwards with its raw body. */
  readonly rawHeaders?: readonly string[];
  /**
   * `public`: an anonymous GET's reply is the same for every anonymous caller, so the gateway may
   * keep and share it (issue 11); `none`: never shared.
   */
  readonly cache: "public" | "none";
  /**
   * The request or the answer carries a secret (a password, a token): its `Idempotency-Key` is
   * ignored rather than stored (shared/idempotency.ts says why).
   */
  readonly carriesSecrets?: boolean;
  /**
   * A POST that computes an answer and changes nothing (a price preview): safe to repeat by
   * nature, so its `Idempotency-Key` is ignored rather than stored (shared/idempotency.ts).
   */
  readonly changesNothing?: boolean;
  /**
   * The operation reads no token: it authenticates by other means (login: the credentials in
   * its body) or needs none (logout), as in the original. The gateway then does not verify an
   * `Authorization` sent with it, so a stale token a client still sends cannot stop a user from
   * signing in again, or out.
   */
  readonly ignoresToken?: boolean;
}

export type HttpOperation = Operation<HttpRequest, HttpReply>;

export interface ServiceContract<
  Ops extends Record<string, Operation> = Record<string, Operation>,
> {
  /** The service's name on the bus (its subjects start with it). */
  readonly service: string;
  readonly description: string;
  /** JSON:API types this service owns (for `include` across services). */
  readonly types: readonly string[];
  /** `<parent type>.<relationship>` of other services' resources this service serves. */
  readonly relations?: readonly string[];
  /**
   * Cached replies a change of one of this service's types touches beyond the resource itself
   * and its collection (shared/cache_tags.ts), by type: e.g. an event is also addressed by its
   * identifier. Applied to facts by the gateway and to write replies by the service.
   */
  readonly touches?: Readonly<Record<string, Touches>>;
  readonly operations: Ops;
}

/**
 * Checks a contract's shape once, at load: subjects start with the service, keys are unique, and
 * a service serving relationships of others' resources answers `resolve-related` (the gateway
 * asks it for every `include` of them: without it, such an include was a 503 naming a service
 * that was running).
 */
export function defineContract<Ops extends Record<string, Operation>>(
  contract: ServiceContract<Ops>,
): ServiceContract<Ops> {
  const subjects = new Set<string>();
  for (const [key, operation] of Object.entries(contract.operations)) {
    if (!operation.endpoint.subject.startsWith(`${contract.service}.`)) {
      throw new Error(`${contract.service} contract: ${key} is outside the service's subjects`);
    }
    subjects.add(operation.endpoint.subject);
  }
  if (contract.relations?.length && !subjects.has(`${contract.service}.resolve-related`)) {
    throw new Error(
      `${contract.service} contract: it serves ${contract.relations.join(", ")} but has no ` +
        `resolve-related operation (resolveRelatedOperation)`,
    );
  }
  for (const [type, touches] of Object.entries(contract.touches ?? {})) {
    declareTouches(type, touches);
  }
  return contract;
}

/** An HTTP operation answered by the service that owns it. */
export function httpOperation(
  subject: string,
  access: Access,
  routes: readonly HttpRoute[],
  options: {
    media?: Media;
    cache?: "public";
    /** When a cacheable reply stops being true on its own (see EndpointCache). */
    expires?: EndpointCache["expires"];
    rawHeaders?: readonly string[];
    carriesSecrets?: boolean;
    changesNothing?: boolean;
    ignoresToken?: boolean;
  } = {},
): HttpOperation {
  const writes = routes.some((route) => route.method !== "GET");
  const cache: EndpointCache | undefined = options.cache === "public"
    ? { role: "read", expires: options.expires }
    : writes
    ? { role: "write" }
    : undefined;
  return {
    endpoint: httpEndpoint(subject, cache),
    access,
    routes,
    media: options.media ?? "jsonapi",
    rawHeaders: options.rawHeaders,
    cache: options.cache ?? "none",
    carriesSecrets: options.carriesSecrets,
    changesNothing: options.changesNothing,
    ignoresToken: options.ignoresToken,
  };
}

/** The schemas of the operations services offer each other, by name (shared/schemas/bus.ts). */
type BusSchemas = typeof import("./schemas/bus.ts").BUS_OPERATION_SCHEMAS;

/**
 * A bus-only operation, typed and checked by the schemas named `schemas` in shared/schemas/bus.ts.
 * Only the serving service imports them, when it serves: the gateway, which asks but never
 * serves, loads neither them nor zod.
 */
export function busOperation<K extends keyof BusSchemas>(
  subject: string,
  schemas: K,
  options: { readForClient?: boolean } = {},
): Operation<RequestIn<K>, AnswerIn<K>> {
  const load = async () => (await import("./schemas/bus.ts")).BUS_OPERATION_SCHEMAS[schemas];
  return {
    // TypeScript cannot follow a generic key into the object; both types come from that entry.
    endpoint: defineEndpoint(subject, load as () => Promise<BusEndpointSchemas<K>>, options),
    access: "services",
    routes: [],
    media: "json",
    cache: "none",
  };
}

type RequestIn<K extends keyof BusSchemas> = z.output<BusSchemas[K]["request"]>;
type AnswerIn<K extends keyof BusSchemas> = z.output<BusSchemas[K]["response"]>;
type BusEndpointSchemas<K extends keyof BusSchemas> = Required<
  EndpointSchemas<RequestIn<K>, AnswerIn<K>>
>;

/**
 * `<service>.resolve`, which every service that owns JSON:API types answers: the resources of
 * `type` with these ids that `actor` may see (invisible or unknown ones are left out). The
 * gateway uses it to build compound documents whose `include` crosses services.
 */
export function resolveOperation(service: string) {
  return busOperation(`${service}.resolve`, "resolve");
}

/**
 * `<service>.resolve-related`, which every service that serves relationships of another
 * service's resources answers (an event's `discount-codes`): for each parent id, the linkage and
 * the related resources `actor` may see, for `include` of those relationships.
 */
export function resolveRelatedOperation(service: string) {
  return busOperation(`${service}.resolve-related`, "resolveRelated");
}

/** The actions of a JSON:API collection. */
export type Action = "list" | "create" | "get" | "update" | "delete" | "related" | "relationship";

/** Usual shapes of a collection's access, to combine: `{ ...PUBLIC_READS, ...ADMIN_WRITES }`. */
export const PUBLIC_READS = {
  list: "anyone",
  get: "anyone",
  related: "anyone",
  relationship: "anyone",
} as const satisfies Partial<Record<Action, Access>>;
/** A resource's relationships for signed-in callers (the service checks their role on it). */
export const SIGNED_IN_RELATIONS = {
  related: "signed-in",
  relationship: "signed-in",
} as const satisfies Partial<Record<Action, Access>>;
/** Reads of one resource for signed-in callers (the service checks their role on it). */
export const SIGNED_IN_READS = {
  get: "signed-in",
  ...SIGNED_IN_RELATIONS,
} as const satisfies Partial<Record<Action, Access>>;
export const SIGNED_IN_WRITES = {
  create: "signed-in",
  update: "signed-in",
  delete: "signed-in",
} as const satisfies Partial<Record<Action, Access>>;
export const ADMIN_WRITES = {
  create: "admin",
  update: "admin",
  delete: "admin",
} as const satisfies Partial<Record<Action, Access>>;

export interface CollectionSpec<A extends Action> {
  /** Which actions the collection offers, and who may call each. */
  access: Readonly<Record<A, Access>>;
  /** Relationship names routed to `related` and `relationship` (`/:id/<rel>`). */
  related?: readonly string[];
  /** Who may read a relationship, where it differs from `related`'s and `relationship`'s. */
  relatedAccess?: Readonly<Record<string, Access>>;
  /** Actions whose anonymous replies caches may share. */
  cache?: readonly NoInfer<A>[];
  /** Actions whose request or answer carries a secret (see `Operation.carriesSecrets`). */
  secrets?: readonly NoInfer<A>[];
  /** Where the collection is mounted (default `/v1/<collection>`). */
  path?: string;
}

function actionRoutes(
  action: Action,
  base: string,
  related: readonly string[],
  relatedAccess: Readonly<Record<string, Access>>,
): HttpRoute[] {
  switch (action) {
    case "list":
      return [{ method: "GET", path: base }];
    case "create":
      return [{ method: "POST", path: base }];
    case "get":
      return [{ method: "GET", path: `${base}/:id` }];
    case "update":
      return [{ method: "PATCH", path: `${base}/:id` }];
    case "delete":
      return [{ method: "DELETE", path: `${base}/:id` }];
    case "related":
      return related.map((rel) => ({
        method: "GET",
        path: `${base}/:id/${rel}`,
        params: { rel },
        access: relatedAccess[rel],
      }));
    case "relationship":
      return related.map((rel) => ({
        method: "GET",
        path: `${base}/:id/relationships/${rel}`,
        params: { rel },
        access: relatedAccess[rel],
      }));
  }
}

/**
 * The operations of one collection, keyed `<collection>.<action>` with subjects
 * `<service>.<collection>.<action>`. Also used for relationships a service serves under another
 * service's collection (`/v1/events/:id/discount-codes` answered by discounts).
 */
export function collection<N extends string, A extends Action>(
  service: string,
  name: N,
  spec: CollectionSpec<A>,
): { [K in `${N}.${A}`]: HttpOperation } {
  const base = spec.path ?? `/v1/${name}`;
  const cached = new Set<Action>(spec.cache ?? []);
  const secret = new Set<Action>(spec.secrets ?? []);
  const operations: Record<string, HttpOperation> = {};
  for (const [action, access] of Object.entries(spec.access) as [A, Access][]) {
    operations[`${name}.${action}`] = httpOperation(
      `${service}.${name}.${action}`,
      access,
      actionRoutes(action, base, spec.related ?? [], spec.relatedAccess ?? {}),
      { cache: cached.has(action) ? "public" : undefined, carriesSecrets: secret.has(action) },
    );
  }
  return operations as { [K in `${N}.${A}`]: HttpOperation };
}

type RequestOf<O> = O extends Operation<infer Req, unknown> ? Req : never;
type ReplyOf<O> = O extends Operation<unknown, infer Res> ? Res : never;

/** One handler per operation of a contract, by key: a missing or extra key does not compile. */
export type Handlers<Ops extends Record<string, Operation>> = {
  [K in keyof Ops]: Handler<RequestOf<Ops[K]>, ReplyOf<Ops[K]>>;
};

/** The routes `Bus.serve` takes: each operation's endpoint with the handler bound to its key. */
export function bindOperations<Ops extends Record<string, Operation>>(
  contract: ServiceContract<Ops>,
  handlers: Handlers<Ops>,
): Route[] {
  return Object.entries(contract.operations).map(([key, operation]) =>
    route(operation.endpoint, handlers[key as keyof Ops])
  );
}

/** Picks the endpoints of one collection out of a contract, keyed by action. */
export function endpointsOf<Ops extends Record<string, Operation>, N extends string>(
  contract: ServiceContract<Ops>,
  name: N,
): { [K in keyof Ops as K extends `${N}.${infer A}` ? A : never]: Ops[K]["endpoint"] } {
  const endpoints: Record<string, Endpoint<unknown, unknown>> = {};
  for (const [key, operation] of Object.entries(contract.operations)) {
    if (key.startsWith(`${name}.`)) endpoints[key.slice(name.length + 1)] = operation.endpoint;
  }
  // deno-lint-ignore no-explicit-any -- the mapped type above is what the loop builds
  return endpoints as any;
}
