/** `/v1/event-sub-topics`. */
import type { Hono } from "hono";
import { catalog } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/event-sub-topics`. */
export function eventSubTopicsRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, catalog.eventSubTopics, { related: ["event-topic", "events"] });
}
