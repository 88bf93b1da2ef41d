/**
 * Subscriptions a NATS server refuses for want of room (its `max_subscriptions`): nats.js keeps
 * them as if they were there, so until 2026-12-06 the routes they served answered 503 "no service
 * instance is running" while the process said it was ready and logged nothing (a resource review).
 * A private server with a low limit, since the shared one has none.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { startNatsServer } from "@testing/nats_server.ts";
import { Bus } from "./bus.ts";
import { defineEndpoint, route } from "./bus_endpoints.ts";
import { ServiceUnavailableError } from "./errors.ts";
import { createLogger } from "./log.ts";
import { recordingLogger } from "./testing.ts";

const quiet = createLogger("test", "error");

/** Five routes, each answering its own number: with discovery's nine, fourteen subscriptions. */
const numbered = Array.from({ length: 5 }, (_, n) => ({
  n,
  endpoint: defineEndpoint(`limits.r${n}`, { request: z.object({}), response: z.number() }),
}));
const routes = numbered.map(({ n, endpoint }) => route(endpoint, () => n));

/** The error lines `logger` kept. */
function errorsOf(logger: ReturnType<typeof recordingLogger>) {
  return logger.lines.filter((line) => line.level === "error");
}

async function servedOn(maxSubscriptions: number) {
  const nats = await startNatsServer({ maxSubscriptions });
  const logger = recordingLogger();
  const serving = await Bus.connect({ url: nats.url, prefix: "limits", logger });
  const asking = await Bus.connect({ url: nats.url, prefix: "limits", logger: quiet });
  const service = serving.serve({ name: "demo", version: "1.0.0" }, routes);
  return {
    serving,
    asking,
    logger,
    async [Symbol.asyncDispose]() {
      await service.stop();
      await serving.close();
      await asking.close();
      await nats[Symbol.asyncDispose]();
    },
  };
}

Deno.test("[bus] subscriptions the server refuses fail the start check, show in discovery and are logged once", async () => {
  await using system = await servedOn(12);
  await assert.rejects(
    system.serving.confirmSubscriptions(),
    /NATS refused 2 of its subscriptions \(maximum subscriptions exceeded\)/,
  );
  // Discovery was subscribed first, so the instance still answers a ping and says what is wrong.
  const [instance] = await system.asking.discover("demo");
  assert.deepEqual(instance.problems, system.serving.problems());
  assert.equal(instance.problems?.length, 1);
  // The last two routes are the ones refused: nothing serves them.
  assert.equal(await system.asking.request(numbered[2].endpoint, {}), 2);
  for (const { endpoint } of numbered.slice(3)) {
    await assert.rejects(system.asking.request(endpoint, {}), ServiceUnavailableError);
  }
  assert.deepEqual(errorsOf(system.logger).map((line) => line.refused), [1], "one line, not two");
  assert.match(errorsOf(system.logger)[0].message, /raise max_subscriptions/);
});

Deno.test("[bus] a server with room for every subscription passes the start check", async () => {
  await using system = await servedOn(14);
  await system.serving.confirmSubscriptions();
  assert.deepEqual(system.serving.problems(), []);
  const [instance] = await system.asking.discover("demo");
  assert.equal(instance.problems, undefined);
  for (const { n, endpoint } of numbered) {
    assert.equal(await system.asking.request(endpoint, {}), n);
  }
  assert.deepEqual(errorsOf(system.logger), []);
});
