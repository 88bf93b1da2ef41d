/** `/v1/events`. */
import type { Hono } from "hono";
import { catalog, discounts, payments } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { jsonApi, relatedRoutes, resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/events`. */
export function eventsRoutes(forward: Forward): Hono<GatewayEnv> {
  const app = resourceRoutes(forward, catalog.events, {
    related: ["event-topic", "event-sub-topic", "tickets", "owner", "users-events-roles"],
  });
  // Relationships other services own.
  relatedRoutes(app, forward, "discount-codes", discounts.events);
  relatedRoutes(app, forward, "discount-code", discounts.events);
  relatedRoutes(app, forward, "stripe-authorization", payments.events);
  // The public checkout lookup of a code by its text.
  app.get("/:id/discount-codes/:code", jsonApi, forward(discounts.lookup));
  return app;
}
