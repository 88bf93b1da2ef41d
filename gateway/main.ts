/** Starts the gateway: reads the config, connects to the bus, serves HTTP, drains on SIGTERM. */
import { Bus } from "@shared/bus.ts";
import { loadConfig } from "@shared/config.ts";
import { listenAt, onShutdown, startOrExit } from "@shared/lifecycle.ts";
import { createLogger } from "@shared/log.ts";
import { createGateway } from "./app.ts";
import { serveErrors } from "./errors.ts";
import { announceGateway, serveMetrics } from "./metrics.ts";
import { serveGuarded } from "./slow_clients.ts";

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

const bus = await startOrExit(
  logger,
  "connect to NATS",
  () => Bus.connect({ url: config.natsUrl, prefix: config.busPrefix, name: "gateway", logger }),
  { url: config.natsUrl },
);
const gateway = createGateway({ bus, config, logger });
const listen = {
  hostname: config.host,
  port: config.port,
  onListen: ({ hostname, port }: { hostname: string; port: number }) => {
    logger.info("gateway listening", { url: `http://${hostname}:${port}` });
  },
};
// HEADER_TIMEOUT_MS=0 serves without the header clock (one hop less; see slow_clients.ts).
const server = await listenAt<{ shutdown(): Promise<void> }>(
  { hostname: config.host, port: config.port, hostSetting: "HOST", portSetting: "PORT" },
  () =>
    config.headerTimeoutMs > 0
      ? serveGuarded(
        {
          ...listen,
          headerTimeoutMs: config.headerTimeoutMs,
          // The longest a request can last here: its body, the service, a merge as long again.
          answerWithinMs: config.bodyTimeoutMs + 2 * config.requestTimeoutMs +
            config.headerTimeoutMs,
          answer: gateway.answer,
          onError: serveErrors(logger),
          onFull: (full, figures) =>
            full
              ? logger.warn(
                "at the open-file limit (ulimit -n): new connections are answered 503 until " +
                  "some close",
                figures,
              )
              : logger.info("taking new connections again", figures),
        },
        gateway.fetch,
      )
      : Deno.serve({ ...listen, onError: serveErrors(logger) }, gateway.fetch),
);

// Metrics: this gateway's figures reach every gateway's /metrics over the bus (gateway/metrics.ts).
const announced = announceGateway(bus);
await startOrExit(logger, "subscribe on NATS", () => bus.confirmSubscriptions());
const metricsServer = await listenAt(
  {
    hostname: config.metricsAddr?.hostname ?? "",
    port: config.metricsAddr?.port ?? 0,
    hostSetting: "METRICS_ADDR",
    portSetting: "METRICS_ADDR",
  },
  () => serveMetrics(bus, config, logger),
);
if (metricsServer) logger.info("metrics listening", { addr: metricsServer.addr });

/**
 * Serves on for `ms` after the first SIGTERM or SIGINT; a second one ends the wait (an operator
 * who means now, a supervisor's second try).
 */
async function serveOnFor(ms: number): Promise<void> {
  if (ms <= 0) return;
  logger.info("draining: serving on before stopping", { ms });
  const { promise, resolve } = Promise.withResolvers<void>();
  const timer = setTimeout(resolve, ms);
  const signals = ["SIGINT", "SIGTERM"] as const;
  // Listened to from the next turn: the signal being handled now is not the second one.
  setTimeout(() => signals.forEach((signal) => Deno.addSignalListener(signal, resolve)), 0);
  await promise;
  clearTimeout(timer);
  signals.forEach((signal) => Deno.removeSignalListener(signal, resolve));
}

onShutdown(logger, async () => {
  // Readiness fails first, while the gateway serves on: a load balancer (or Kubernetes, which
  // removes a pod from its endpoints at about the same time as it sends SIGTERM) has
  // SHUTDOWN_DELAY_MS to stop sending new requests here before they would be refused.
  gateway.drain();
  await serveOnFor(config.shutdownDelayMs);
  // shutdown() stops accepting and resolves once in-flight requests are answered.
  await server.shutdown();
  await metricsServer?.shutdown();
  await announced.stop();
  await bus.close();
});
