/**
 * A closed-loop load generator: a fixed number of workers, each sending one request, waiting for
 * the whole answer, then sending the next, until the time is up. Every latency is kept, so the
 * percentiles are exact rather than estimated from buckets.
 *
 * Only loopback targets are accepted: a benchmark never sends traffic anywhere else.
 *
 * @example
 * ```ts ignore
 * import { runLoad, summarize } from "./load.ts";
 * const run = await runLoad("http://127.0.0.1:8080/v1/event-topics", {
 *   concurrency: 32,
 *   durationMs: 5000,
 * });
 * console.log(summarize([run])); // { requests, errors, rps, p50Ms, p99Ms, ... }
 * ```
 */

export interface LoadOptions {
  /** Requests in flight at any time (default 32). */
  concurrency?: number;
  /** How long to keep sending, in milliseconds. */
  durationMs: number;
  /** Sent with every request. */
  headers?: Record<string, string>;
}

/** One request of a mixed load (see `runLoad`). */
export interface LoadRequest {
  url: string;
  init?: RequestInit;
}

/** What one timed run saw. */
export interface LoadRun {
  requests: number;
  /** Answers that were not 200, and requests that failed outright. */
  errors: number;
  /** Wall time from the first request to the last answer. */
  elapsedMs: number;
  /** Milliseconds per request, in completion order. */
  latencies: Float64Array;
  /** The first error seen, to say what went wrong. */
  firstError?: string;
}

/** Throughput and latency over one or more runs against the same target. */
export interface LoadSummary {
  requests: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Refuses any URL that is not on this machine. */
export function assertLoopback(url: string): void {
  const { hostname } = new URL(url);
  if (!LOOPBACK.has(hostname) && !/^127\.\d+\.\d+\.\d+$/.test(hostname)) {
    throw new Error(`Cannot load ${url}: benchmarks only send traffic to loopback addresses`);
  }
}

/** The value at quantile `q` (0..1) of sorted values (nearest rank). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/**
 * Sends requests to `target` from `concurrency` workers for `durationMs`, recording each
 * latency. `target` is one URL, or a function that picks each request (a mixed load); a 2xx
 * or 304 answer counts as success then.
 */
export async function runLoad(
  target: string | (() => LoadRequest),
  options: LoadOptions,
): Promise<LoadRun> {
  const pick = typeof target === "string" ? undefined : target;
  const url = typeof target === "string" ? target : pick!().url;
  assertLoopback(url);
  const concurrency = options.concurrency ?? 32;
  const headers = options.headers ?? {};
  // Grown on demand; a closed loop on loopback rarely exceeds 100k requests per second.
  let latencies = new Float64Array(65_536);
  let requests = 0;
  let errors = 0;
  let firstError: string | undefined;
  const began = performance.now();
  const deadline = began + options.durationMs;

  function record(ms: number): void {
    if (requests === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[requests++] = ms;
  }

  async function worker(): Promise<void> {
    while (performance.now() < deadline) {
      const next = pick?.();
      if (next) assertLoopback(next.url);
      const sent = performance.now();
      try {
        const response = await fetch(next?.url ?? url, next?.init ?? { headers });
        // Read the whole body: a request is done when its last byte has arrived.
        await response.arrayBuffer();
        const ok = next ? response.ok || response.status === 304 : response.status === 200;
        if (!ok) {
          errors++;
          firstError ??= `status ${response.status}`;
        }
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
      record(performance.now() - sent);
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker));
  return {
    requests,
    errors,
    elapsedMs: performance.now() - began,
    latencies: latencies.subarray(0, requests),
    firstError,
  };
}

/** Adds up runs against one target: total requests over total time, percentiles over all. */
export function summarize(runs: LoadRun[]): LoadSummary {
  const requests = runs.reduce((n, run) => n + run.requests, 0);
  const errors = runs.reduce((n, run) => n + run.errors, 0);
  const elapsedMs = runs.reduce((n, run) => n + run.elapsedMs, 0);
  const all = new Float64Array(requests);
  let at = 0;
  for (const run of runs) {
    all.set(run.latencies, at);
    at += run.latencies.length;
  }
  all.sort();
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    requests,
    errors,
    rps: elapsedMs > 0 ? Math.round(requests / (elapsedMs / 1000)) : 0,
    p50Ms: round(percentile(all, 0.5)),
    p90Ms: round(percentile(all, 0.9)),
    p99Ms: round(percentile(all, 0.99)),
    maxMs: round(all.length ? all[all.length - 1] : NaN),
  };
}
