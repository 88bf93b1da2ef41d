/** `/v1/tickets`. */
import type { Hono } from "hono";
import { catalog } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/tickets`. */
export function ticketsRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, catalog.tickets, { related: ["event"] });
}
