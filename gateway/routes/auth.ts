/** `/v1/auth`: login, under both of the original's paths; plain JSON is accepted here. */
import { Hono } from "hono";
import { catalog } from "@shared/subjects.ts";
import type { GatewayEnv } from "../env.ts";
import type { Forward } from "../forward.ts";
import { mediaType } from "../middleware/media_type.ts";

/** Mounted at `/v1/auth`. */
export function authRoutes(forward: Forward): Hono<GatewayEnv> {
  const plainJson = mediaType({ plainJson: true });
  // The original answers login with plain JSON ({"access_token"}), not a JSON:API document.
  const login = forward(catalog.login, undefined, { contentType: "application/json" });
  return new Hono<GatewayEnv>()
    .post("/login", plainJson, login)
    .post("/session", plainJson, login);
}
