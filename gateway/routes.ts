/**
 * The gateway's routes, mounted by iterating the services' contracts (shared/contracts/): each
 * HTTP route of each operation checks its media type and forwards to the operation's endpoint.
 * Nothing here names a resource: adding an endpoint is one contract entry and one handler.
 */
import type { Hono, MiddlewareHandler } from "hono";
import {
  type Media,
  type Operation,
  type ServiceContract,
  sharedByCaches,
} from "@shared/contract.ts";
import type { GatewayEnv } from "./env.ts";
import type { Forward, ForwardOptions } from "./forward.ts";
import { mediaType } from "./middleware/media_type.ts";

/** One instance of each media check, shared by every route that speaks it. */
const mediaChecks: Record<Media, MiddlewareHandler<GatewayEnv>[]> = {
  jsonapi: [mediaType()],
  json: [mediaType({ plainJson: true })],
  // Stripe posts plain JSON and signs the exact bytes, so nothing is checked or parsed here.
  "signed-json": [],
};

function forwardOptionsOf(operation: Operation): ForwardOptions {
  switch (operation.media) {
    case "jsonapi":
      return {};
    case "json":
      return { contentType: "application/json" };
    case "signed-json":
      return { contentType: "application/json", raw: { headers: operation.rawHeaders ?? [] } };
  }
}

/**
 * `METHOD path` of every route whose operation reads no token (`ignoresToken`: login, logout),
 * for the authentication middleware to pass by. Such routes have fixed paths, so that the set
 * is exact.
 */
export function routesIgnoringTokens(contracts: readonly ServiceContract[]): Set<string> {
  const routes = new Set<string>();
  for (const contract of contracts) {
    for (const operation of Object.values(contract.operations)) {
      if (!operation.ignoresToken) continue;
      for (const route of operation.routes) {
        if (route.path.includes(":")) {
          throw new Error(`Cannot ignore tokens on ${route.path}: only fixed paths may`);
        }
        routes.add(`${route.method} ${route.path}`);
      }
    }
  }
  return routes;
}

/** Adds every HTTP route of `contracts` to `app`, in contract order. */
export function mountContracts(
  app: Hono<GatewayEnv>,
  forward: Forward,
  contracts: readonly ServiceContract[],
): void {
  for (const contract of contracts) {
    for (const operation of Object.values(contract.operations)) {
      const options = forwardOptionsOf(operation);
      for (const route of operation.routes) {
        app.on(
          route.method,
          [route.path],
          ...mediaChecks[operation.media],
          forward(operation.endpoint, route.params, {
            ...options,
            shared: sharedByCaches(operation, route),
          }),
        );
      }
    }
  }
}
