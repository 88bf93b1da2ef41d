/** `/v1/users`. */
import type { Hono } from "hono";
import { catalog, discounts } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { relatedRoutes, resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/users`. */
export function usersRoutes(forward: Forward): Hono<GatewayEnv> {
  const app = resourceRoutes(forward, catalog.users, { related: ["events", "users-events-roles"] });
  relatedRoutes(app, forward, "discount-codes", discounts.users);
  return app;
}
