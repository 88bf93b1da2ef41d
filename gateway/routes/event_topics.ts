/** `/v1/event-topics`. */
import type { Hono } from "hono";
import { catalog } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/event-topics`. */
export function eventTopicsRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, catalog.eventTopics, { related: ["events", "event-sub-topics"] });
}
