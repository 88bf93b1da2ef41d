/**
 * Route building blocks shared by the resource modules: the five collection/item actions and the
 * related + relationship pair of each relationship name. A relationship may be served by another
 * service than its parent collection; pass that service's endpoints to `relatedRoutes`.
 */
import { Hono } from "hono";
import type { ResourceEndpoints } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward, HttpEndpoint } from "../forward.ts";
import { mediaType } from "../middleware/media_type.ts";

export type Action = "list" | "create" | "get" | "update" | "delete";

/** Checks media types on every JSON:API route (one instance, shared by all routes). */
export const jsonApi = mediaType();

const ALL_ACTIONS: readonly Action[] = ["list", "create", "get", "update", "delete"];

export interface ResourceRoutesOptions {
  /** Which actions the collection offers (default: all five). */
  actions?: readonly Action[];
  /** Relationship names served by the collection's own related/relationship endpoints. */
  related?: readonly string[];
}

/**
 * Adds `GET /:id/<rel>` and `GET /:id/relationships/<rel>`, passing `params.rel`.
 *
 * @example
 * ```ts ignore
 * relatedRoutes(app, forward, "discount-codes", {
 *   related: discounts.eventCodes.related,
 *   relationship: discounts.eventCodes.relationship,
 * });
 * ```
 */
export function relatedRoutes(
  app: Hono<GatewayEnv>,
  forward: Forward,
  rel: string,
  endpoints: { related: HttpEndpoint; relationship: HttpEndpoint },
): Hono<GatewayEnv> {
  const params = { rel };
  app.get(`/:id/${rel}`, jsonApi, forward(endpoints.related, params));
  app.get(`/:id/relationships/${rel}`, jsonApi, forward(endpoints.relationship, params));
  return app;
}

/**
 * A sub-app for one collection, to mount with `app.route("/v1/<collection>", ...)`; more routes
 * (for example relationships served by other services) can be added to the returned app.
 *
 * @example
 * ```ts ignore
 * app.route("/v1/tickets", resourceRoutes(forward, catalog.tickets, { related: ["event"] }));
 * ```
 */
export function resourceRoutes(
  forward: Forward,
  endpoints: ResourceEndpoints,
  options: ResourceRoutesOptions = {},
): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  const actions = new Set(options.actions ?? ALL_ACTIONS);
  if (actions.has("list")) app.get("/", jsonApi, forward(endpoints.list));
  if (actions.has("create")) app.post("/", jsonApi, forward(endpoints.create));
  if (actions.has("get")) app.get("/:id", jsonApi, forward(endpoints.get));
  if (actions.has("update")) app.patch("/:id", jsonApi, forward(endpoints.update));
  if (actions.has("delete")) app.delete("/:id", jsonApi, forward(endpoints.delete));
  for (const rel of options.related ?? []) relatedRoutes(app, forward, rel, endpoints);
  return app;
}
