/**
 * Traces, with Deno's built-in OpenTelemetry: it is on when the process starts with
 * `OTEL_DENO=true` and exports over OTLP as the standard `OTEL_*` variables say
 * (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`, ...).
 * Deno makes the HTTP spans of `Deno.serve` and `fetch`; the spans of our own hops (bus requests,
 * store transactions, fact publishing and handling) are made here through `@opentelemetry/api`,
 * and the W3C trace context travels in NATS message headers and in the outbox.
 *
 * Off (the default), every helper is one check of `tracing` and nothing else: no span objects,
 * no header, no extra column written, so the request path costs what it did without tracing.
 *
 * @example
 * ```ts
 * import { inSpan, tracing } from "@shared/telemetry.ts";
 * const answer = await inSpan("work", {}, async () => 42);
 * console.log(tracing, answer);
 * ```
 */
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { scrub } from "./scrub.ts";

export { SpanKind };
export type { Span };

/**
 * True when Deno's OpenTelemetry runs in this process. Deno reads `OTEL_DENO` once at start-up
 * (setting it later turns nothing on), so it is read here once too, not through config.ts.
 */
export const tracing = readTracingFlag();

function readTracingFlag(): boolean {
  try {
    return Deno.env.get("OTEL_DENO") === "true";
  } catch {
    // No env permission (a library use): then Deno's OpenTelemetry is off as well.
    return false;
  }
}

const tracer = trace.getTracer("open-event", "1.0.0");

/** A string map as W3C trace context travels: `traceparent` and, when set, `tracestate`. */
export type TraceCarrier = Record<string, string>;

/** Anything with string headers, such as NATS `MsgHdrs`. */
export interface HeaderMap {
  get(name: string): string;
  set(name: string, value: string): void;
}

const headerGetter = {
  keys: () => ["traceparent", "tracestate"],
  get: (carrier: HeaderMap, key: string) => carrier.get(key) || undefined,
};
const headerSetter = {
  set: (carrier: HeaderMap, key: string, value: string) => carrier.set(key, value),
};

/** Writes the trace context of `ctx` (default: the active one) into message headers. */
export function injectHeaders(headers: HeaderMap, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, headerSetter);
}

/** The trace context message headers carry (the root context when they carry none). */
export function contextFromHeaders(headers: HeaderMap | undefined): Context {
  return headers ? propagation.extract(ROOT_CONTEXT, headers, headerGetter) : ROOT_CONTEXT;
}

/** The active trace context as a plain object (stored with an outbox row), or null. */
export function currentCarrier(): TraceCarrier | null {
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? carrier : null;
}

/** The context a stored carrier describes (the root context for none). */
export function contextFromCarrier(carrier: TraceCarrier | null | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
}

/** The span context stored in `ctx`, when it holds a valid one (for links). */
export function spanContextOf(ctx: Context): SpanContext | undefined {
  const found = trace.getSpanContext(ctx);
  return found && isSpanContextValid(found) ? found : undefined;
}

/** `trace_id` and `span_id` of the active span, for log lines; undefined without one. */
export function activeIds(): { trace_id: string; span_id: string } | undefined {
  const found = trace.getActiveSpan()?.spanContext();
  if (!found || !isSpanContextValid(found)) return undefined;
  return { trace_id: found.traceId, span_id: found.spanId };
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  links?: Link[];
  /** The parent (default: the active context). */
  parent?: Context;
}

/** Starts a span (callers end it); the context to run its work in comes with it. */
export function startSpan(name: string, options: SpanOptions): { span: Span; ctx: Context } {
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(name, options, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Marks a span failed with the error's name and message, secrets scrubbed as in log lines. */
export function failSpan(span: Span, error: unknown): void {
  const name = error instanceof Error ? error.name : "Error";
  const message = error instanceof Error ? error.message : String(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: scrub(`${name}: ${message}`) });
}

/**
 * Runs `work` in a span that is active meanwhile and ends with it (failed if it throws). With
 * tracing off it only runs `work`.
 */
export async function inSpan<T>(
  name: string,
  options: SpanOptions,
  work: (span?: Span) => Promise<T>,
): Promise<T> {
  if (!tracing) return await work();
  const { span, ctx } = startSpan(name, options);
  try {
    return await context.with(ctx, () => work(span));
  } catch (error) {
    failSpan(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Runs `work` with `ctx` active (for callers that start and end spans themselves). */
export function withContext<T>(ctx: Context, work: () => T): T {
  return context.with(ctx, work);
}

/**
 * Names the active span (Deno's span of an HTTP request, named only by its method) after the
 * route it matched, as OpenTelemetry's HTTP conventions ask: `GET /v1/events/:id`.
 */
export function nameServerSpan(method: string, route: string): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  span.updateName(`${method} ${route}`);
  span.setAttribute("http.route", route);
}
