/**
 * What the bus helper (shared/bus.ts) counts and traces about every request, on both sides:
 * requests, errors, latency and requests in flight per endpoint (metrics, always on), and a
 * client span and a server span per request joined by the W3C trace context in the NATS
 * message's headers (only with OTEL_DENO=true). Endpoints are named by their bus subject
 * without the prefix (`catalog.events.get`), the same name on both sides.
 *
 * @example
 * ```ts
 * import { EndpointMeter } from "@shared/bus_telemetry.ts";
 * const meter = new EndpointMeter("server", "demo.echo");
 * const began = meter.start();
 * meter.finish(began, 200);
 * ```
 */
import type { MsgHdrs } from "@nats-io/nats-core";
import { metrics } from "./metrics.ts";
import {
  contextFromHeaders,
  failSpan,
  injectHeaders,
  type Span,
  SpanKind,
  startSpan,
} from "./telemetry.ts";

const requests = metrics.counter(
  "oe_bus_requests",
  "Bus requests by side (client: sent by this process, server: served by it) and endpoint",
  ["side", "endpoint"],
);
const errors = metrics.counter(
  "oe_bus_errors",
  "Bus requests that ended in an error status (4xx, 5xx; 503/504 when no answer came)",
  ["side", "endpoint", "status"],
);
const durations = metrics.histogram(
  "oe_bus_request_duration_seconds",
  "Time from sending a bus request to its answer (client) or from its turn to answering (server)",
  ["side", "endpoint"],
);
const inFlight = metrics.gauge(
  "oe_bus_requests_in_flight",
  "Bus requests sent and not yet answered (client) or being served (server)",
  ["side", "endpoint"],
);

export type Side = "client" | "server";

/** The figures of one endpoint on one side, made once and kept by the caller. */
export class EndpointMeter {
  readonly #requests;
  readonly #durations;
  readonly #inFlight;

  constructor(readonly side: Side, readonly endpoint: string) {
    this.#requests = requests.series(side, endpoint);
    this.#durations = durations.series(side, endpoint);
    this.#inFlight = inFlight.series(side, endpoint);
  }

  /** Counts a request as begun; returns the start time for `finish`. */
  start(): number {
    this.#requests.add();
    this.#inFlight.add();
    return performance.now();
  }

  /** Counts the request's end: its latency and, for a status of 400 or more, an error. */
  finish(began: number, status: number): number {
    const elapsedMs = performance.now() - began;
    this.#inFlight.add(-1);
    this.#durations.observe(elapsedMs / 1000);
    if (status >= 400) errors.series(this.side, this.endpoint, String(status)).add();
    return elapsedMs;
  }
}

const clientMeters = new Map<string, EndpointMeter>();

/** The client-side meter of an endpoint (made on its first request). */
export function clientMeter(endpoint: string): EndpointMeter {
  let meter = clientMeters.get(endpoint);
  if (!meter) {
    meter = new EndpointMeter("client", endpoint);
    clientMeters.set(endpoint, meter);
  }
  return meter;
}

function busAttributes(endpoint: string, subject: string) {
  return {
    "messaging.system": "nats",
    "messaging.destination.name": subject,
    "rpc.system": "nats",
    "rpc.method": endpoint,
  };
}

/** Starts the client span of a request and puts its context in the request's headers. */
export function startClientSpan(endpoint: string, subject: string, headers: MsgHdrs): Span {
  const { span, ctx } = startSpan(endpoint, {
    kind: SpanKind.CLIENT,
    attributes: busAttributes(endpoint, subject),
  });
  injectHeaders(headers, ctx);
  return span;
}

/** Starts the server span of a received request, as a child of the requester's span. */
export function startServerSpan(endpoint: string, subject: string, headers: MsgHdrs | undefined) {
  return startSpan(endpoint, {
    kind: SpanKind.SERVER,
    attributes: busAttributes(endpoint, subject),
    parent: contextFromHeaders(headers),
  });
}

/**
 * Ends a bus span with the answer's status. A 4xx is the requester's mistake, not a failure of
 * the server, as OpenTelemetry's HTTP conventions say; on the client side it is one.
 */
export function endBusSpan(span: Span, side: Side, status: number, error?: unknown): void {
  span.setAttribute("oe.status", status);
  if (status >= 500 || (side === "client" && status >= 400)) {
    failSpan(span, error ?? new Error(`status ${status}`));
  }
  span.end();
}
