/** `/v1/discount-codes` and `/v1/orders` (the price preview): served by the discounts service. */
import { Hono } from "hono";
import { discounts } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { mediaType } from "../middleware/media_type.ts";
import { resourceRoutes } from "./resource.ts";

/** Mounted at `/v1/discount-codes`. */
export function discountCodesRoutes(forward: Forward): Hono<GatewayEnv> {
  return resourceRoutes(forward, discounts.codes, {
    related: ["event", "events", "tickets", "marketer"],
  });
}

/** Mounted at `/v1/orders`: the original takes and answers plain JSON here. */
export function ordersRoutes(forward: Forward): Hono<GatewayEnv> {
  return new Hono<GatewayEnv>().post(
    "/calculate-amount",
    mediaType({ plainJson: true }),
    forward(discounts.calculateAmount, undefined, { contentType: "application/json" }),
  );
}
