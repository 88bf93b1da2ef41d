/** `/v1/users-events-roles`: no list of its own (lists hang off events and users). */
import type { Hono } from "hono";
import { catalog } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/users-events-roles`. */
export function usersEventsRolesRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, catalog.usersEventsRoles, {
    actions: ["create", "get", "update", "delete"],
    related: ["user", "event", "role"],
  });
}
