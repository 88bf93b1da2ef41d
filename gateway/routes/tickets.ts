/** `/v1/tickets`. */
import type { Hono } from "hono";
import { catalog, discounts } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { relatedRoutes, resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/tickets`. */
export function ticketsRoutes(forward: Forward): Hono<GatewayEnv> {
  const app = resourceRoutes(forward, catalog.tickets, { related: ["event"] });
  relatedRoutes(app, forward, "discount-codes", discounts.tickets);
  return app;
}
