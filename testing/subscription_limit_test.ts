/**
 * A service whose NATS server refuses some of its subscriptions (`max_subscriptions` below what it
 * needs: the catalog 63) stops at start with one line saying so, instead of logging `ready` and
 * answering 503 on the routes refused (a resource review, 2026-12-06). A real catalog process on
 * a private JetStream server with room for 40 per connection, and one with room for all.
 */
import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { testDatabase } from "@shared/testing.ts";
import { faultEnv } from "./fault_env.ts";
import { startNatsServer } from "./nats_server.ts";
import { readyOrExited, spawnProcess } from "./processes.ts";

async function catalogOn(maxSubscriptions: number) {
  await using stack = new AsyncDisposableStack();
  const database = stack.use(await testDatabase());
  const nats = stack.use(await startNatsServer({ jetStream: true, maxSubscriptions }));
  const env = faultEnv({
    databaseUrl: database.url,
    natsUrl: nats.url,
    prefix: "limits",
    port: freePort(),
    requestTimeoutMs: 3000,
  });
  const catalog = stack.use(spawnProcess("catalog", "services/catalog/main.ts", env));
  const outcome = await readyOrExited(catalog, "catalog ready");
  return { outcome, lines: [...catalog.lines] };
}

Deno.test("[limits] a catalog past NATS's max_subscriptions stops at start and says why", async () => {
  const { outcome, lines } = await catalogOn(40);
  if (outcome === "running") assert.fail(`it started:\n${lines.join("\n")}`);
  assert.equal(outcome.code, 1);
  assert.match(
    lines.at(-1) ?? "",
    /^catalog: Cannot subscribe on NATS: NATS refused \d+ of its subscriptions \(maximum subscriptions exceeded\): raise max_subscriptions/,
  );
  assert.ok(!lines.some((line) => line.includes("catalog ready")), "it never said it was ready");
});

Deno.test("[limits] a catalog with room for its subscriptions starts", async () => {
  const { outcome, lines } = await catalogOn(200);
  assert.equal(outcome, "running", lines.join("\n"));
});
