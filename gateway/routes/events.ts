/** `/v1/events`. */
import type { Hono } from "hono";
import { catalog } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/events`. */
export function eventsRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, catalog.events, {
    related: ["event-topic", "event-sub-topic", "tickets", "owner", "users-events-roles"],
  });
}
