/** Starts the gateway: reads the config, connects to the bus, serves HTTP, drains on SIGTERM. */
import { Bus } from "@shared/bus.ts";
import { loadConfig } from "@shared/config.ts";
import { createLogger } from "@shared/log.ts";
import { createApp } from "./app.ts";

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("=", "");
}

const config = loadConfig();
const logger = createLogger("gateway", config.logLevel);
if (!config.jwtSecret) {
  logger.warn(
    "JWT_SECRET is unset: using a random secret for this run; tokens signed by other processes " +
      "will be refused and none survive a restart",
  );
  config.jwtSecret = randomSecret();
}

const bus = await Bus.connect({
  url: config.natsUrl,
  prefix: config.busPrefix,
  name: "gateway",
  logger,
});
const app = createApp({ bus, config, logger });
const server = Deno.serve({
  hostname: config.host,
  port: config.port,
  onListen: ({ hostname, port }) => {
    logger.info("gateway listening", { url: `http://${hostname}:${port}` });
  },
}, app.fetch);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info("gateway stopping", { signal });
  // shutdown() stops accepting and resolves once in-flight requests are answered.
  await server.shutdown();
  await bus.close();
  logger.info("gateway stopped");
  Deno.exit(0);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => void stop(signal));
}
