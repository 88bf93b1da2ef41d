/** `/v1/discount-codes` and `/v1/orders` (the price preview): served by the discounts service. */
import { Hono } from "hono";
import { discounts } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { mediaType } from "../middleware/media_type.ts";
import { jsonApi, resourceRoutes } from "./resource.ts";

const RELATED = ["event", "events", "tickets", "marketer"] as const;

/**
 * Mounted at `/v1/discount-codes`. Relationship writes are routed for every relationship, so
 * the service answers 403 for the ones it does not let clients write (`event`, `marketer`),
 * as JSON:API asks, rather than the gateway answering 405.
 */
export function discountCodesRoutes(forward: Forward): Hono<GatewayEnv> {
  const app = resourceRoutes(forward, discounts.codes, { related: RELATED });
  const writes = discounts.codeRelationships;
  for (const rel of RELATED) {
    const path = `/:id/relationships/${rel}`;
    app.patch(path, jsonApi, forward(writes.replace, { rel }));
    app.post(path, jsonApi, forward(writes.add, { rel }));
    app.delete(path, jsonApi, forward(writes.remove, { rel }));
  }
  return app;
}

/** Mounted at `/v1/orders`: the original takes and answers plain JSON here. */
export function ordersRoutes(forward: Forward): Hono<GatewayEnv> {
  return new Hono<GatewayEnv>().post(
    "/calculate-amount",
    mediaType({ plainJson: true }),
    forward(discounts.calculateAmount, undefined, { contentType: "application/json" }),
  );
}
