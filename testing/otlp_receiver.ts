/**
 * A small OTLP/HTTP receiver (JSON protocol, `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) for tests:
 * it keeps every span that processes export to `POST /v1/traces`, flattened with its service
 * name, the names of the metrics each service exports to `/v1/metrics`, and each export to
 * `/v1/logs` as the JSON text it came as (to look for what must never be shipped).
 *
 * @example
 * ```ts ignore
 * await using otlp = startOtlpReceiver();
 * const env = { OTEL_DENO: "true", ...otlp.env };
 * ```
 */

/** One exported span, with ids as the OTLP JSON encoding gives them (hex). */
export interface ReceivedSpan {
  service: string;
  name: string;
  /** OTLP span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: number;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

export interface OtlpReceiver extends AsyncDisposable {
  /** Environment that points Deno's OpenTelemetry at this receiver. */
  env: Record<string, string>;
  spans: ReceivedSpan[];
  /** `service/metric name` of every metric exported so far. */
  metrics: Set<string>;
  /** The service of each export to `/v1/metrics` so far, in the order they came. */
  metricExports: string[];
  /** Every log export so far, as received (OTLP JSON). */
  logs: string[];
  /** Every export so far, of any signal: its path, a space, its body as received. */
  exports: string[];
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}

interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

function attributes(list: OtlpAttribute[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    out[key] = value.stringValue ?? value.intValue ?? value.doubleValue ?? value.boolValue;
  }
  return out;
}

// deno-lint-ignore no-explicit-any
function flatten(body: any): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const resourceSpans of body.resourceSpans ?? []) {
    const service = serviceOf(resourceSpans.resource);
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        out.push({
          service,
          name: span.name,
          kind: span.kind,
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId ?? "",
          // deno-lint-ignore no-explicit-any
          links: (span.links ?? []).map((l: any) => ({ traceId: l.traceId, spanId: l.spanId })),
          attributes: attributes(span.attributes),
          status: span.status?.code ?? 0,
        });
      }
    }
  }
  return out;
}

// deno-lint-ignore no-explicit-any
function serviceOf(resource: any): string {
  return String(attributes(resource?.attributes)["service.name"] ?? "");
}

// deno-lint-ignore no-explicit-any
function metricNames(body: any): string[] {
  const out: string[] = [];
  for (const resourceMetrics of body.resourceMetrics ?? []) {
    const service = serviceOf(resourceMetrics.resource);
    for (const scope of resourceMetrics.scopeMetrics ?? []) {
      for (const metric of scope.metrics ?? []) out.push(`${service}/${metric.name}`);
    }
  }
  return out;
}

export function startOtlpReceiver(): OtlpReceiver {
  const spans: ReceivedSpan[] = [];
  const metrics = new Set<string>();
  const metricExports: string[] = [];
  const logs: string[] = [];
  const exports: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const text = await req.text();
    exports.push(`${new URL(req.url).pathname} ${text}`);
    const body = (() => {
      try {
        return JSON.parse(text);
      } catch {
        return {};
      }
    })();
    const path = new URL(req.url).pathname;
    if (path === "/v1/logs") logs.push(text);
    if (path === "/v1/traces") spans.push(...flatten(body));
    if (path === "/v1/metrics") {
      metricNames(body).forEach((name) => metrics.add(name));
      // deno-lint-ignore no-explicit-any
      metricExports.push(...(body.resourceMetrics ?? []).map((r: any) => serviceOf(r.resource)));
    }
    return Response.json({});
  });
  return {
    env: {
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
      // Export within a fraction of a second, so the test does not wait for the defaults.
      OTEL_BSP_SCHEDULE_DELAY: "200",
      OTEL_BLRP_SCHEDULE_DELAY: "200",
      OTEL_METRIC_EXPORT_INTERVAL: "1000",
    },
    spans,
    metrics,
    metricExports,
    logs,
    exports,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}
