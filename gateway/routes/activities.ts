/** `/v1/activities`: the activity log, read-only, served by the audit service. */
import type { Hono } from "hono";
import { audit } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/activities`; other verbs answer 405. */
export function activitiesRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, audit.activities, { actions: ["list", "get"] });
}
