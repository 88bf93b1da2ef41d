/**
 * The documentation never lies about what the gateway serves: every route its app mounts is an
 * action of blueprint/*.apib (whose examples Dredd runs), and every action is a route it mounts.
 * shared/contracts/contract_test.ts checks the contracts' routes; this test reads the app itself,
 * so a route mounted in gateway/app.ts outside every contract (the health probes) is checked too.
 */
import assert from "node:assert/strict";
import { type Action, documentsRoute, parseBlueprint } from "../scripts/blueprint_apib.ts";
import { BLUEPRINT_FILES } from "../hooks/error_examples.ts";
import { testGateway } from "./_test_utils.ts";

/** Routes the gateway serves that are no client's API, and where they are documented instead. */
const NOT_FOR_CLIENTS: Record<string, string> = {
  "GET /metrics": "operators' Prometheus scrape, only with METRICS_TOKEN (README, Metrics)",
};

function blueprintActions(): Action[] {
  return BLUEPRINT_FILES.flatMap((file) =>
    parseBlueprint(Deno.readTextFileSync(new URL(`../${file}`, import.meta.url)))
      .flatMap((chunk) => "action" in chunk ? [chunk.action] : [])
  );
}

/** `METHOD path` of every route the app answers with a handler of its own. */
function servedRoutes(routes: readonly { method: string; path: string }[]): string[] {
  // `ALL` is middleware and the 405 fallback; `OPTIONS` is answered on every path (CORS).
  const served = routes.filter(({ method }) => method !== "ALL" && method !== "OPTIONS");
  return [...new Set(served.map(({ method, path }) => `${method} ${path}`))];
}

Deno.test("[gateway] every route the gateway mounts is documented, and every documented one mounted", async () => {
  // With a metrics token the app mounts everything it can: `/metrics` too.
  await using gw = await testGateway({ env: { METRICS_TOKEN: "a-metrics-token-for-tests" } });
  const served = servedRoutes(gw.app.routes);
  const actions = blueprintActions();
  assert.ok(served.includes("GET /health/ready") && served.includes("GET /metrics"), "not vacuous");
  const undocumented = served.filter((route) =>
    !NOT_FOR_CLIENTS[route] && !actions.some((action) => documentsRoute(action, route))
  );
  assert.deepEqual(undocumented, [], "served routes without a blueprint action");
  const unserved = actions
    .filter((action) => !served.some((route) => documentsRoute(action, route)))
    .map((action) => `${action.method} ${action.path} (${action.name})`);
  assert.deepEqual(unserved, [], "blueprint actions the gateway does not serve");
});
