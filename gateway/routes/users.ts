/** `/v1/users`. */
import type { Hono } from "hono";
import { catalog } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/users`. */
export function usersRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, catalog.users, { related: ["events", "users-events-roles"] });
}
