/**
 * The gateway's part in operations: it counts every HTTP request by method (one of a fixed set,
 * else `_OTHER`) and Hono route pattern (`GET /v1/events/:id`, never the raw path), so the number
 * of series stays bounded whatever clients send; names Deno's HTTP span after that route when
 * tracing; and serves `GET /metrics`: Prometheus text of every process of the system, gathered
 * over the bus from each instance's answer to NATS service `STATS` and labelled with its
 * `service` and `instance`. So one scrape shows which service is saturated.
 *
 * `/metrics` is not public: on the gateway's own address it needs `METRICS_TOKEN` (as a bearer
 * token) and is absent without it; `METRICS_ADDR` serves it alone on a separate address (an
 * internal network), where the token is asked for too when set, and then only there.
 *
 * @example
 * ```ts ignore
 * app.use("*", observeHttp());
 * app.get("/metrics", metricsEndpoint({ bus, token: config.metricsToken }));
 * ```
 */
import { type Handler, Hono, type MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { nuid } from "@nats-io/nats-core";
import type { Bus, RunningService } from "@shared/bus.ts";
import type { Config } from "@shared/config.ts";
import { createLogger, type Logger } from "@shared/log.ts";
import { UnauthorizedError } from "@shared/errors.ts";
import { type FamilySnapshot, metrics, renderPrometheus, type Source } from "@shared/metrics.ts";
import { serviceNames } from "@shared/contracts/mod.ts";
import { nameServerSpan, tracing } from "@shared/telemetry.ts";
import type { GatewayEnv } from "./env.ts";
import {
  answerOptions,
  errorResponse,
  methodNotAllowed,
  notFound,
  onError,
  serveErrors,
} from "./errors.ts";
import { askInstances, type AskOptions } from "./health.ts";
import { PRIVATE } from "./http_cache.ts";
import { headLength } from "./middleware/head_length.ts";
import { requestId } from "./middleware/request_id.ts";

const requests = metrics.counter(
  "oe_http_requests",
  "HTTP requests answered by the gateway, by method, route pattern and status",
  ["method", "route", "status"],
);
const durations = metrics.histogram(
  "oe_http_request_duration_seconds",
  "Time from a request's arrival at the gateway to its answer, by method and route pattern",
  ["method", "route"],
);
const inFlight = metrics.gauge(
  "oe_http_requests_in_flight",
  "HTTP requests the gateway is answering now",
).series();

/** The methods that are labels as they are; any other is `_OTHER`. */
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
]);

/**
 * The method as a label: one of a fixed set, else `_OTHER` (as OpenTelemetry's HTTP conventions
 * say). A client picks the method, and each new label value is a series kept for good: made-up
 * methods would grow every scrape without bound.
 */
function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : "_OTHER";
}

/** Counts requests coming into (1) or out of (-1) the gateway's hands. */
export function countInFlight(delta: 1 | -1): void {
  inFlight.add(delta);
}

/** Counts one answered request and its latency (from `began`, a `performance.now()`). */
export function countAnswer(method: string, route: string, status: number, began: number): void {
  const label = methodLabel(method);
  durations.series(label, route).observe((performance.now() - began) / 1000);
  requests.series(label, route, String(status)).add();
  // The conventions name a span of an unknown method `HTTP {route}`.
  if (tracing) nameServerSpan(label === "_OTHER" ? "HTTP" : label, route);
}

/** Counts each request and its latency by route pattern; names the HTTP span when tracing. */
export function observeHttp(): MiddlewareHandler<GatewayEnv> {
  return async function observeHttpMiddleware(c, next) {
    const began = performance.now();
    inFlight.add();
    try {
      await next();
    } finally {
      inFlight.add(-1);
      // The last route matched is the most specific one (`*` when no route matched the path).
      const route = routePath(c, -1) || "*";
      countAnswer(c.req.method, route, c.res.status, began);
    }
  };
}

/** This gateway, announced as a service so other gateways' scrapes include its figures. */
let announced: RunningService | undefined;
const unannouncedId = nuid.next();

/** Answers `$SRV.STATS.gateway` (and PING, INFO) for this process; stop it on shutdown. */
export function announceGateway(bus: Bus): RunningService {
  announced = bus.serve({
    name: "gateway",
    version: "1.0.0",
    description: "HTTP gateway (answers discovery only, for metrics)",
  }, []);
  return announced;
}

interface StatsAnswer {
  id: string;
  name: string;
  metadata?: { prefix?: string };
  metrics?: FamilySnapshot[];
}

/** Every instance of `name` on this prefix that answers `$SRV.STATS` in time. */
async function statsOf(
  bus: Bus,
  name: string,
  options: Pick<AskOptions, "now">,
): Promise<StatsAnswer[]> {
  // Busy instances answer late: every instance seen lately is waited for (gateway/health.ts),
  // lately meaning within a few scrape intervals (Prometheus scrapes every 15-60 s), and new ones
  // for the 250 ms of silence the scrape once waited for.
  const asked = await askInstances<StatsAnswer>(bus, "STATS", name, {
    maxWaitMs: 2_000,
    recentMs: 180_000,
    tailMs: 250,
    now: options.now,
  });
  return [...asked.values()];
}

/** How many instances of each service answered this scrape. */
function instanceCounts(counts: [string, number][]): FamilySnapshot {
  return {
    name: "oe_instances",
    help: "Instances of each service that answered this scrape (NATS service STATS)",
    type: "gauge",
    series: counts.map(([service, value]) => ({ labels: { service }, value })),
  };
}

/**
 * Prometheus text of every process on the bus, this gateway included (`now`: the clock of the
 * window instances are waited for in, see AskOptions).
 */
export async function gatherMetrics(
  bus: Bus,
  services: readonly string[],
  options: Pick<AskOptions, "now"> = {},
): Promise<string> {
  const self = announced?.id ?? unannouncedId;
  const names = [...services, "gateway"];
  const [own, ...answers] = await Promise.all([
    metrics.snapshot(),
    ...names.map((name) => statsOf(bus, name, options)),
  ]);
  const sources: Source[] = [{ labels: { service: "gateway", instance: self }, families: own }];
  const counts: [string, number][] = [];
  names.forEach((name, i) => {
    const others = answers[i].filter((answer) => answer.id !== self);
    counts.push([name, others.length + (name === "gateway" ? 1 : 0)]);
    for (const answer of others) {
      sources.push({
        labels: { service: name, instance: answer.id },
        families: answer.metrics ?? [],
      });
    }
  });
  sources.push({ labels: {}, families: [instanceCounts(counts)] });
  return renderPrometheus(sources);
}

/** True when `given` is the expected token (compared as digests: no early exit on a prefix). */
async function tokenMatches(given: string, expected: string): Promise<boolean> {
  const digest = async (text: string) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  let differs = 0;
  for (let i = 0; i < a.length; i++) differs |= a[i] ^ b[i];
  return differs === 0;
}

/** The `GET /metrics` handler; with a token, only callers presenting it are answered. */
export function metricsEndpoint(
  options: { bus: Bus; token?: string; services?: readonly string[] },
): Handler<GatewayEnv> {
  const { bus, token } = options;
  const services = options.services ?? serviceNames;
  return async function metricsHandler(c) {
    if (token !== undefined) {
      const given = c.req.header("Authorization")?.match(/^Bearer\s+(.+)$/i)?.[1] ?? "";
      if (!(await tokenMatches(given, token))) {
        return errorResponse(
          new UnauthorizedError("Cannot read metrics: a valid token is needed"),
          {
            "WWW-Authenticate": "Bearer",
          },
        );
      }
    }
    return c.text(await gatherMetrics(bus, services), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
      // Now's figures, for the one who asked (the README's rule for every answer the response
      // cache does not hold); it had none, a review.
      "Cache-Control": PRIVATE,
    });
  };
}

/**
 * Serves `GET /metrics` alone on METRICS_ADDR (when set), apart from the public address; the
 * token is asked for there too when METRICS_TOKEN is set. Its HEAD says the GET body's length,
 * `OPTIONS` and other methods are answered as on the public address, and any other path is the
 * API's JSON:API 404 (until 2026-12-04 a HEAD said `content-length: 0`, and the rest were Hono's
 * plain-text 404s). Every request is counted and logged with its request id, as there.
 */
export function serveMetrics(
  bus: Bus,
  config: Config,
  logger: Logger = createLogger("gateway", config.logLevel),
): Deno.HttpServer | undefined {
  if (!config.metricsAddr) return undefined;
  const app = new Hono<GatewayEnv>();
  // Counted, given a request id and an access line as on the public address: a scraper refused
  // here (a wrong token) left no trace in the log (an operator review, 2026-12-05).
  app.use("*", observeHttp());
  app.use("*", headLength());
  app.use("*", requestId({ logger }));
  app.get("/metrics", metricsEndpoint({ bus, token: config.metricsToken }));
  app.options("/metrics", answerOptions(["GET"]));
  app.all("/metrics", methodNotAllowed(["GET"]));
  app.onError(onError({ logger }));
  app.notFound(notFound(["GET"]));
  return Deno.serve(
    { ...config.metricsAddr, onListen: () => {}, onError: serveErrors(logger) },
    app.fetch,
  );
}
