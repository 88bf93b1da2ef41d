/**
 * A service instance that starts or stops tells every gateway to drop its whole cache, so that no
 * page rendered by another build outlives a rolling upgrade (a review: after the catalog was
 * replaced, gateways served the old build's pages, without attributes the new one shows, for up
 * to CACHE_TTL_MS). Run as a real process, as an operator runs it.
 */
import assert from "node:assert/strict";
import { EVERY_TAG } from "@shared/cache_tags.ts";
import { touchedTags } from "@shared/cache_touched.ts";
import { gatewayTouched } from "@shared/subjects.ts";
import { factStreamRemoval, testBus, testDatabase } from "@shared/testing.ts";
import { eventually } from "./eventually.ts";
import { spawnProcess } from "./processes.ts";

Deno.test("[operations] a service instance's start and stop each empty every gateway's cache", async () => {
  await using database = await testDatabase();
  await using listener = await testBus();
  await using _streams = factStreamRemoval(listener.natsUrl, listener.prefix);
  const announced: string[][] = [];
  const subscription = listener.bus.nc.subscribe(listener.bus.subject(gatewayTouched), {
    callback: (_error, msg) => void announced.push(touchedTags(msg.data)),
  });
  await listener.bus.nc.flush();
  await using audit = spawnProcess("audit", "services/audit/main.ts", {
    DATABASE_URL: database.url,
    NATS_URL: listener.natsUrl,
    BUS_PREFIX: listener.prefix,
    LOG_LEVEL: "info",
  });
  await audit.waitForLog((line) => line.message === "audit ready", 30_000);
  await eventually(() => announced.length === 1, 5_000, "the announcement of the start");
  assert.deepEqual(announced, [[EVERY_TAG]]);
  await audit.kill("SIGTERM");
  assert.equal((await audit.exited).code, 0);
  await eventually(() => announced.length === 2, 5_000, "the announcement of the stop");
  assert.deepEqual(announced, [[EVERY_TAG], [EVERY_TAG]]);
  subscription.unsubscribe();
});
