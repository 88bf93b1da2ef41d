/**
 * The gateway as a Hono app: request ids and the access log, authentication, the routes of every
 * service contract forwarding to the bus, `/health`, and the single error seam. It holds no business
 * rules and opens no database.
 */
import { Hono } from "hono";
import type { Bus } from "@shared/bus.ts";
import type { Config } from "@shared/config.ts";
import { createLogger, type Logger } from "@shared/log.ts";
import { contracts, serviceNames } from "@shared/contracts/mod.ts";
import type { GatewayEnv } from "./env.ts";
import { answerOptions, methodNotAllowed, notFound, onError } from "./errors.ts";
import { createForwarding } from "./forward.ts";
import { ResponseCache } from "./cache.ts";
import { invalidateOnFacts } from "./cache_invalidation.ts";
import { forgetLeavers, health, live, ready } from "./health.ts";
import { HitPath } from "./hit_path.ts";
import { metricsEndpoint, observeHttp } from "./metrics.ts";
import { auth, TokenVerifier } from "./middleware/auth.ts";
import { cors } from "./middleware/cors.ts";
import { writePreconditions } from "./middleware/write_preconditions.ts";
import { headLength } from "./middleware/head_length.ts";
import { validHost } from "./middleware/host.ts";
import { requestId } from "./middleware/request_id.ts";
import type { RawHead } from "./raw_head.ts";
import { mountContracts, routesIgnoringTokens } from "./routes.ts";
import { SignedPath } from "./signed_path.ts";

export interface AppOptions {
  bus: Bus;
  /** `jwtSecret` must be set (main.ts makes one when the environment has none). */
  config: Config;
  logger?: Logger;
  /** Services `/health` expects (default: every contract's service). */
  services?: readonly string[];
}

/**
 * The response cache, following the facts of the app's bus; none when CACHE_MAX_BYTES is 0.
 * It lives as long as the bus connection (the subscription ends with it).
 */
function responseCache(options: AppOptions, logger: Logger): ResponseCache | undefined {
  const { maxBytes, ttlMs, settleMs } = options.config.cache;
  if (maxBytes === 0) return undefined;
  const cache = new ResponseCache({
    maxBytes,
    ttlMs,
    settleMs,
    // A fetch can last as long as the gateway waits for a service, and a merge as long again.
    memoryMs: 2 * options.config.requestTimeoutMs + settleMs,
  });
  invalidateOnFacts(options.bus, cache, logger);
  return cache;
}

/**
 * Registers, after all real routes, an answer to `OPTIONS` and a 405 fallback on every path that
 * has routes; returns every method of those routes (what `OPTIONS *` answers: errors.ts).
 */
function addMethodFallbacks(app: Hono<GatewayEnv>): string[] {
  const methodsByPath = new Map<string, Set<string>>();
  const allMethods = new Set<string>();
  for (const { path, method } of app.routes) {
    if (method === "ALL") continue;
    if (!methodsByPath.has(path)) methodsByPath.set(path, new Set());
    methodsByPath.get(path)!.add(method);
    allMethods.add(method);
  }
  for (const [path, methods] of methodsByPath) {
    app.options(path, answerOptions([...methods]));
    app.all(path, methodNotAllowed([...methods]));
  }
  return [...allMethods];
}

/** The gateway's app and the handler to serve it with (cache hits may take the short way). */
export interface Gateway {
  app: Hono<GatewayEnv>;
  fetch: (request: Request, info?: Deno.ServeHandlerInfo) => Response | Promise<Response>;
  /** The short way of cache hits, when the response cache is on. */
  hits?: HitPath;
  /** The short way of signed-in reads. */
  signed: SignedPath;
  /**
   * For the slow-client relay (`serveGuarded`'s `answer`): repeated hits and signed-in reads
   * answered off the wire.
   */
  answer: (head: RawHead) => Uint8Array[] | Promise<Uint8Array[]> | undefined;
  /** Marks the gateway as stopping: `/health/ready` answers 503 from now on (gateway/main.ts). */
  drain(): void;
}

/**
 * Builds the gateway: the app, and `fetch`, which answers repeated anonymous cache hits and
 * signed-in reads the short way (gateway/hit_path.ts, gateway/signed_path.ts) and everything else
 * through the app. Serve `fetch`, behind the
 * slow-client guard with `answer`, which answers repeated hits and signed-in reads off the wire
 * (gateway/signed_path.ts).
 *
 * @example
 * ```ts
 * import { Bus } from "@shared/bus.ts";
 * import { loadConfig } from "@shared/config.ts";
 * import { createGateway } from "./app.ts";
 * const config = loadConfig({ JWT_SECRET: "a long random secret" });
 * const bus = await Bus.connect({ url: config.natsUrl, prefix: config.busPrefix });
 * const gateway = createGateway({ bus, config });
 * console.log((await gateway.fetch(new Request("http://localhost/health"))).status);
 * await bus.close();
 * ```
 */
export function createGateway(options: AppOptions): Gateway {
  const { bus, config } = options;
  if (!config.jwtSecret) throw new Error("Cannot create the gateway: config.jwtSecret is unset");
  const logger = options.logger ?? createLogger("gateway", config.logLevel);
  const cache = responseCache(options, logger);
  const verifier = new TokenVerifier(config.jwtSecret);
  const { forward, readSigned, readShared } = createForwarding({
    bus,
    config,
    logger,
    cache,
    onSignedRead: (raw, read) => signed.learn(raw, read),
    onSharedRead: (raw, read) => hits?.learn(raw, read),
  });
  const signed = new SignedPath({ read: readSigned, verifier, logger });
  // `readShared` comes with the cache (its coalescer): both or neither.
  const hits = cache && readShared && new HitPath({ cache, read: readShared, logger });

  const app = new Hono<GatewayEnv>();
  app.use("*", observeHttp());
  app.use("*", headLength());
  app.use("*", requestId({ logger }));
  app.use("*", cors());
  app.use("*", validHost());
  app.use("/v1/*", auth({ verifier, ignoredOn: routesIgnoringTokens(contracts) }));
  // A write's If-Match and If-None-Match are checked against what the same GET through this app
  // answers now.
  app.use("/v1/*", writePreconditions((request) => app.fetch(request)));
  // /health and /metrics wait for no instance that said it stopped.
  forgetLeavers(bus);
  app.get(
    "/health",
    health({
      bus,
      services: options.services ?? serviceNames,
      jwtSecret: config.jwtSecret,
      log: logger,
    }),
  );
  // For probes on this gateway alone (gateway/health.ts): not pulled when one service is down.
  app.get("/health/live", live());
  let draining = false;
  app.get("/health/ready", ready({ bus, draining: () => draining }));
  // Not public: only with a token here (METRICS_TOKEN), and not at all where METRICS_ADDR serves
  // it apart (main.ts; the token then guards that listener, not this one).
  if (config.metricsToken && !config.metricsAddr) {
    app.get("/metrics", metricsEndpoint({ bus, token: config.metricsToken }));
  }
  mountContracts(app, forward, contracts);
  const serverMethods = addMethodFallbacks(app);
  app.onError(onError({ logger }));
  app.notFound(notFound(serverMethods));
  const fetch = (request: Request, info?: Deno.ServeHandlerInfo) =>
    hits?.answer(request) ?? signed.answer(request) ?? app.fetch(request, info);
  const answer = (head: RawHead) => head.signed ? signed.answerHead(head) : hits?.answerHead(head);
  const drain = () => void (draining = true);
  return { app, fetch, hits, signed, answer, drain };
}

/**
 * Builds the gateway app (without the short way of cache hits: see `createGateway`).
 *
 * @example
 * ```ts
 * import { Bus } from "@shared/bus.ts";
 * import { loadConfig } from "@shared/config.ts";
 * import { createApp } from "./app.ts";
 * const config = loadConfig({ JWT_SECRET: "a long random secret" });
 * const bus = await Bus.connect({ url: config.natsUrl, prefix: config.busPrefix });
 * const app = createApp({ bus, config });
 * console.log((await app.request("/health")).status);
 * await bus.close();
 * ```
 */
export function createApp(options: AppOptions): Hono<GatewayEnv> {
  return createGateway(options).app;
}
