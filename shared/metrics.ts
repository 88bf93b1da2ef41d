/**
 * The figures an operator scales by, kept per process: counters, gauges and latency histograms
 * in one registry (`metrics`). They are always on: a series is made once per label set and kept
 * by its caller, so counting a request is a few additions, no allocation.
 *
 * They leave the process two ways: in the answer to NATS service `STATS` (`snapshot()`), which
 * the gateway's `GET /metrics` gathers from every instance and renders as Prometheus text
 * (`renderPrometheus`); and, when Deno's OpenTelemetry is on (`OTEL_DENO=true`), as OpenTelemetry
 * metrics over OTLP (each family has its OpenTelemetry instrument beside it).
 *
 * Figures that live elsewhere (the outbox in Postgres, a consumer's lag in JetStream, the pool)
 * are read by collectors, run before each snapshot and, with OpenTelemetry on, every 10 s. Each
 * collector has a name, and `oe_metrics_collector_up{collector}` says whether its last run read
 * its figures in time (1) or failed or ran out of time (0): then its figures are the last it read,
 * not the current ones, and must not be taken as fresh.
 *
 * Why not `prom-client` (15.1.3, measured 2026-12-01 on the 2-core dev machine): it runs under
 * Deno, and `setDefaultLabels({ service, instance })` in each process plus
 * `AggregatorRegistry.aggregate()` of their `getMetricsAsJSON()` renders the same series (label
 * order aside). But what one request records (counter add, in-flight gauge up and down, histogram
 * observe, on a kept label set) costs 30–60 ns here and 1.15–1.8 µs there: its `labels()`
 * children hash and validate the label object on every call. A gateway request is metered three
 * times (HTTP, bus client, the service's bus server). Its JSON for `STATS` is about 6× larger
 * (3,445 vs 583 bytes for three series), and the OpenTelemetry instruments would stay either way.
 *
 * @example
 * ```ts
 * import { metrics, renderPrometheus } from "@shared/metrics.ts";
 * const served = metrics.counter("demo_requests", "Requests served", ["endpoint"]);
 * served.series("demo.echo").add();
 * console.log(renderPrometheus([{ labels: { service: "demo" }, families: await metrics.snapshot() }]));
 * ```
 */
import { type Attributes, type Histogram, metrics as otel } from "@opentelemetry/api";
import process from "node:process";
import { tracing } from "./telemetry.ts";

export type MetricType = "counter" | "gauge" | "histogram";

/** Latency buckets (seconds): from a cached read to past the gateway's default timeout. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** One series as it crosses the bus: its labels and value, or a histogram's buckets. */
export interface SeriesSnapshot {
  labels: Record<string, string>;
  value?: number;
  /** Cumulative counts per bound of the family, as Prometheus buckets are. */
  buckets?: number[];
  sum?: number;
  count?: number;
}

export interface FamilySnapshot {
  name: string;
  help: string;
  type: MetricType;
  bounds?: number[];
  series: SeriesSnapshot[];
}

/** One label set of a family: keep it and count on it. */
export class Series {
  value = 0;
  sum = 0;
  count = 0;
  readonly counts: Float64Array | undefined;
  readonly #family: Family;
  readonly attributes: Attributes;

  constructor(family: Family, readonly labels: Record<string, string>) {
    this.#family = family;
    this.attributes = labels;
    this.counts = family.bounds ? new Float64Array(family.bounds.length) : undefined;
  }

  /** Adds to a counter or gauge. */
  add(by = 1): void {
    this.value += by;
    this.#family.otelCounter?.add(by, this.attributes);
  }

  /** Sets a gauge. */
  set(value: number): void {
    this.value = value;
  }

  /** Records one observation (seconds, for latency) in a histogram. */
  observe(value: number): void {
    const bounds = this.#family.bounds!;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        this.counts![i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
    this.#family.otelHistogram?.record(value, this.attributes);
  }

  snapshot(): SeriesSnapshot {
    if (!this.counts) return { labels: this.labels, value: this.value };
    let running = 0;
    const buckets = Array.from(this.counts, (n) => running += n);
    return { labels: this.labels, buckets, sum: this.sum, count: this.count };
  }
}

/** A named metric and its series, one per label set. */
export class Family {
  readonly #series = new Map<string, Series>();
  otelCounter: { add(value: number, attributes: Attributes): void } | undefined;
  otelHistogram: Histogram | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
    readonly bounds?: readonly number[],
  ) {
    if (tracing) this.#instrument();
  }

  /** The series of these label values (in `labelNames` order), made on first use. */
  series(...values: string[]): Series {
    const key = values.join("\u0000");
    let found = this.#series.get(key);
    if (!found) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => labels[name] = values[i] ?? "");
      found = new Series(this, labels);
      this.#series.set(key, found);
      // OpenTelemetry exports a counter's series from its first add: a series made and never
      // counted (no poison fact yet) was on /metrics at 0 but absent over OTLP, where an alert
      // on its increase had nothing to start from (an operator review).
      this.otelCounter?.add(0, found.attributes);
    }
    return found;
  }

  /** Forgets every series (a collector whose source is gone). */
  clear(): void {
    this.#series.clear();
  }

  /** Forgets the series of these label values, if there is one. */
  remove(...values: string[]): void {
    this.#series.delete(values.join("\u0000"));
  }

  snapshot(): FamilySnapshot {
    const series = [...this.#series.values()].map((s) => s.snapshot());
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      bounds: this.bounds?.slice(),
      series,
    };
  }

  /** The OpenTelemetry instrument beside this family (only with OTEL_DENO=true). */
  #instrument(): void {
    const meter = otel.getMeter("open-event", "1.0.0");
    const options = { description: this.help };
    if (this.type === "counter") this.otelCounter = meter.createCounter(this.name, options);
    else if (this.type === "histogram") {
      this.otelHistogram = meter.createHistogram(this.name, {
        ...options,
        unit: this.name.endsWith("_seconds") ? "s" : undefined,
        advice: { explicitBucketBoundaries: [...this.bounds!] },
      });
    } else {
      meter.createObservableGauge(this.name, options).addCallback((result) => {
        for (const s of this.#series.values()) result.observe(s.value, s.attributes);
      });
    }
  }
}

/** Reads figures that live outside the process; returns how to stop. */
export type Collector = () => Promise<void>;

/**
 * How long one collector may take before a snapshot goes on without it (and reports it down: its
 * figures are then the last it read).
 */
export const COLLECT_TIMEOUT_MS = 1_000;
/** With OpenTelemetry on, how often collectors refresh what the gauges export. */
const OTEL_COLLECT_MS = 10_000;

export class Registry {
  readonly #families = new Map<string, Family>();
  readonly #collectors = new Map<Collector, string>();
  #up: Family | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  counter(name: string, help: string, labelNames: readonly string[] = []): Family {
    return this.#family(name, help, "counter", labelNames);
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Family {
    return this.#family(name, help, "gauge", labelNames);
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    bounds: readonly number[] = LATENCY_BUCKETS,
  ): Family {
    return this.#family(name, help, "histogram", labelNames, bounds);
  }

  /**
   * Runs `collect` before every snapshot until the returned function is called, and reports
   * whether it succeeded in time as `oe_metrics_collector_up{collector=name}` (collectors sharing
   * a name, one per consumer say, are up when all of them are).
   */
  collect(name: string, collect: Collector): () => void {
    this.#up ??= this.gauge(
      "oe_metrics_collector_up",
      "Whether the collector's last read succeeded in time (1) or not (0: its figures are old)",
      ["collector"],
    );
    this.#collectors.set(collect, name);
    if (tracing && this.#timer === undefined) {
      const timer = setInterval(() => void this.#runCollectors(), OTEL_COLLECT_MS);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
    return () => {
      this.#collectors.delete(collect);
      if (![...this.#collectors.values()].includes(name)) this.#up?.remove(name);
    };
  }

  /** Every family and series, after the collectors have read what they read. */
  async snapshot(): Promise<FamilySnapshot[]> {
    await this.#runCollectors();
    return [...this.#families.values()].map((f) => f.snapshot());
  }

  async #runCollectors(): Promise<void> {
    const runs = [...this.#collectors].map(async ([collect, name]) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), COLLECT_TIMEOUT_MS);
      });
      // A collector that fails (Postgres away) or is late keeps its last figures and is reported
      // down, so they are not read as current; the others go on.
      const read = collect().then(() => true, () => false);
      const ok = await Promise.race([read, late]).finally(() => clearTimeout(timer));
      return [name, ok] as const;
    });
    const up = new Map<string, boolean>();
    for (const [name, ok] of await Promise.all(runs)) up.set(name, ok && (up.get(name) ?? true));
    for (const [name, ok] of up) this.#up?.series(name).set(ok ? 1 : 0);
  }

  #family(
    name: string,
    help: string,
    type: MetricType,
    labelNames: readonly string[],
    bounds?: readonly number[],
  ): Family {
    const known = this.#families.get(name);
    if (known) {
      if (known.type !== type) throw new Error(`Cannot register ${name}: it is a ${known.type}`);
      return known;
    }
    const family = new Family(name, help, type, labelNames, bounds);
    this.#families.set(name, family);
    return family;
  }
}

/** The process's registry: every instance reports its own through `STATS`. */
export const metrics = new Registry();

/** The figures of one process and the labels that say whose they are (service, instance). */
export interface Source {
  labels: Record<string, string>;
  families: FamilySnapshot[];
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function numberText(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}

function seriesLines(family: FamilySnapshot, s: SeriesSnapshot, extra: Record<string, string>) {
  const labels = { ...extra, ...s.labels };
  if (family.type !== "histogram") {
    const name = family.type === "counter" ? `${family.name}_total` : family.name;
    return [`${name}${labelText(labels)} ${numberText(s.value ?? 0)}`];
  }
  const lines = (family.bounds ?? []).map((bound, i) =>
    `${family.name}_bucket${labelText({ ...labels, le: numberText(bound) })} ${s.buckets?.[i] ?? 0}`
  );
  lines.push(`${family.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${s.count ?? 0}`);
  lines.push(`${family.name}_sum${labelText(labels)} ${numberText(s.sum ?? 0)}`);
  lines.push(`${family.name}_count${labelText(labels)} ${s.count ?? 0}`);
  return lines;
}

/**
 * Prometheus text format (0.0.4) of several processes' figures: one HELP and TYPE per family,
 * every process's series under it with its `service` and `instance` labels.
 */
export function renderPrometheus(sources: Source[]): string {
  const byName = new Map<string, { family: FamilySnapshot; lines: string[] }>();
  for (const source of sources) {
    for (const family of source.families) {
      const entry = byName.get(family.name) ?? { family, lines: [] };
      byName.set(family.name, entry);
      // Another process may disagree on a family's type (an older version): keep the first.
      if (entry.family.type !== family.type) continue;
      for (const s of family.series) entry.lines.push(...seriesLines(family, s, source.labels));
    }
  }
  const out: string[] = [];
  for (const { family, lines } of byName.values()) {
    const name = family.type === "counter" ? `${family.name}_total` : family.name;
    out.push(`# HELP ${name} ${family.help.replaceAll("\n", " ")}`);
    out.push(`# TYPE ${name} ${family.type}`);
    out.push(...lines);
  }
  return out.join("\n") + "\n";
}

/** CPU seconds and resident memory of this process: what capacity planning divides. */
function watchProcess(registry: Registry): void {
  const cpu = registry.counter("process_cpu_seconds", "CPU time used by this process (s)").series();
  const rss = registry.gauge("process_resident_memory_bytes", "Resident memory (bytes)").series();
  let counted = 0;
  registry.collect("process", () => {
    const { user, system } = process.cpuUsage();
    const seconds = (user + system) / 1e6;
    cpu.add(seconds - counted);
    counted = seconds;
    rss.set(Deno.memoryUsage().rss);
    return Promise.resolve();
  });
}

/** How often the event loop's delay is sampled: ten timers a second cost nothing measurable. */
export const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * How late this process's timers fire: a timer due every 100 ms records how far past due it ran.
 * Everything a process does waits for its one JavaScript thread, so a busy loop (CPU-bound, or one
 * long synchronous task such as rendering a large page) makes every answer that much later; this
 * says so on its own, where request durations mix it with Postgres and the bus. Node's
 * `monitorEventLoopDelay` does the same in libuv; Deno's (2.9.6) reported 15.5 ms for a measured
 * 50 ms block, hence a timer of our own.
 */
function watchEventLoop(registry: Registry): void {
  const delays = registry.histogram(
    "oe_event_loop_delay_seconds",
    "How late a timer due every 100 ms fired: the time anything waits for this process's one thread",
  ).series();
  let due = performance.now() + EVENT_LOOP_SAMPLE_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    delays.observe(Math.max(0, now - due) / 1000);
    due = now + EVENT_LOOP_SAMPLE_MS;
  }, EVENT_LOOP_SAMPLE_MS);
  // A sampler must not keep a process (a test, a script) alive.
  Deno.unrefTimer(timer);
}

/** `OTEL_RESOURCE_ATTRIBUTES`, or undefined where the process may not read the environment. */
function resourceAttributes(): string | undefined {
  try {
    return Deno.env.get("OTEL_RESOURCE_ATTRIBUTES");
  } catch {
    return undefined;
  }
}

/**
 * This process's `service.instance.id` (from `OTEL_RESOURCE_ATTRIBUTES`, where every launcher here
 * puts one), or undefined. Values are percent-encoded there (the OpenTelemetry SDK spec).
 */
export function serviceInstanceId(attributes: string | undefined): string | undefined {
  for (const pair of attributes?.split(",") ?? []) {
    const at = pair.indexOf("=");
    if (at === -1 || pair.slice(0, at).trim() !== "service.instance.id") continue;
    const value = pair.slice(at + 1).trim();
    try {
      return decodeURIComponent(value) || undefined;
    } catch {
      return value || undefined;
    }
  }
  return undefined;
}

/**
 * `oe_instance_info{service_instance_id} 1`: what joins a `/metrics` series (labelled by the NATS
 * service id, `instance`) to the same instance's traces and OTLP metrics (resource
 * `service.instance.id`; log lines go to stderr), as OpenTelemetry's `target_info` does. Absent
 * without an id.
 */
function announceInstanceId(registry: Registry): void {
  const id = serviceInstanceId(resourceAttributes());
  if (id === undefined) return;
  registry.gauge(
    "oe_instance_info",
    "This instance's OpenTelemetry service.instance.id (value always 1)",
    ["service_instance_id"],
  ).series(id).set(1);
}

watchProcess(metrics);
watchEventLoop(metrics);
announceInstanceId(metrics);
