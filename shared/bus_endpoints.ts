/**
 * Endpoints: a named request/reply capability (its subject without the bus prefix) with the
 * schemas the serving side checks, and routes, which pair an endpoint with its handler. Declared
 * in contracts that both sides share; shared/bus.ts re-exports them.
 */
import type { Msg } from "@nats-io/nats-core";
import type { EndpointCache } from "./cache_tags.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";

/**
 * What checks a payload; a zod schema is one. Structural, so that this module, which the gateway
 * loads, loads no zod: zod and the schemas cost an idle gateway ~10 MiB of the memory its cache
 * needs (README, "Benchmark").
 */
export interface Schema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: unknown };
}

/** What an endpoint reads and, for `rpc` endpoints, what it answers. */
export interface EndpointSchemas<Req, Res> {
  request: Schema<Req>;
  response?: Schema<Res>;
}

/** A named request/reply capability: its subject (without the bus prefix) and its schemas. */
export interface Endpoint<Req, Res> {
  readonly subject: string;
  readonly kind: "rpc" | "http";
  /**
   * Its schemas, loaded once, when a service serves it. Only the serving side checks (each request
   * it receives, each answer before it leaves), so a requester such as the gateway never loads
   * them; both sides share the contract that declares the endpoint.
   */
  readonly schemas: () => Promise<EndpointSchemas<Req, Res>>;
  /** How replies are tagged for the gateway's cache (http endpoints their contract marks). */
  readonly cache?: EndpointCache;
  /**
   * An `rpc` endpoint whose answer is what a client's read asked for (a page of a related list
   * another service serves): an answer too large for the bus is then the client's 400 saying how
   * to ask for less, as on an `http` endpoint, not a 500.
   */
  readonly readForClient?: boolean;
}

/**
 * An endpoint answering a typed request with a typed, checked answer. Give the schemas, or a
 * function that imports them where a module the gateway loads declares the endpoint (contracts).
 */
export function defineEndpoint<Req, Res>(
  subject: string,
  schemas:
    | Required<EndpointSchemas<Req, Res>>
    | (() => Promise<Required<EndpointSchemas<Req, Res>>>),
  options: { readForClient?: boolean } = {},
): Endpoint<Req, Res> {
  const load = typeof schemas === "function" ? schemas : () => Promise.resolve(schemas);
  const endpoint = { subject, kind: "rpc" as const, schemas: loadedOnce(load) };
  return options.readForClient ? { ...endpoint, readForClient: true } : endpoint;
}

/** Every HTTP endpoint reads the request the gateway forwards (shared/schemas/http.ts). */
const httpSchemas = loadedOnce(async (): Promise<EndpointSchemas<HttpRequest, HttpReply>> => {
  const { httpRequestSchema } = await import("./schemas/http.ts");
  return { request: httpRequestSchema };
});

/** An endpoint that answers one HTTP request forwarded by the gateway. */
export function httpEndpoint(
  subject: string,
  cache?: EndpointCache,
): Endpoint<HttpRequest, HttpReply> {
  return { subject, kind: "http", schemas: httpSchemas, cache };
}

/** `load`, called the first time only; later calls share its promise. */
function loadedOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => loading ??= load();
}

export type Handler<Req, Res> = (payload: Req, msg: Msg) => Res | Promise<Res>;

/**
 * An endpoint with the function that serves it. A service's route list mixes request and reply
 * types, so they are erased here (`any`: TypeScript has no existential types); `route()` is the
 * one way to build a Route and checks that the handler fits its endpoint.
 */
export interface Route {
  // deno-lint-ignore no-explicit-any
  endpoint: Endpoint<any, any>;
  // deno-lint-ignore no-explicit-any
  handler: Handler<any, any>;
}

export function route<Req, Res>(endpoint: Endpoint<Req, Res>, handler: Handler<Req, Res>): Route {
  return { endpoint, handler };
}
