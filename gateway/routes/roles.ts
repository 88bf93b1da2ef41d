/** `/v1/roles`: read-only. */
import type { Hono } from "hono";
import { catalog } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/roles`. */
export function rolesRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, catalog.roles, { actions: ["list", "get"] });
}
