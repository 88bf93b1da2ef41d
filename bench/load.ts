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
  /**
   * `"lean"` (default): a keep-alive HTTP/1.1 client per worker (bench/http1_client.ts), with
   * `fetch` only for what it does not do; `"fetch"`: `fetch` for everything. The environment
   * variable LOAD_CLIENT=fetch forces `fetch` too, to compare the two.
   */
  client?: "lean" | "fetch";
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

import { type EncodedRequest, encodeRequest, Http1Connection } from "./http1_client.ts";

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
  const record = new Recorder();
  const deadline = record.began + options.durationMs;
  const plain: RequestInit = { headers }; // one object, so its encoding is cached

  async function worker(): Promise<void> {
    const sender = newSender(options.client, headers);
    try {
      while (performance.now() < deadline) {
        const next = pick?.();
        if (next) assertLoopback(next.url);
        const sent = performance.now();
        try {
          const status = await sender(next?.url ?? url, next?.init ?? plain);
          const ok = next ? (status >= 200 && status < 300) || status === 304 : status === 200;
          if (!ok) record.fail(`status ${status}`);
        } catch (error) {
          record.failWith(error);
        }
        record.latencies.push(performance.now() - sent);
      }
    } finally {
      sender.close?.();
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker));
  return record.run();
}

/** A fixed-rate run (see `runAtRate`). */
export interface RateOptions {
  /** Requests started per second, whatever the answers' pace. */
  ratePerSecond: number;
  durationMs: number;
  /** Connections the requests are spread over, one request on each at a time (default 64). */
  connections?: number;
  headers?: Record<string, string>;
}

/**
 * Sends `url` requests at a fixed rate for `durationMs` (an open loop, as wrk2 does): request k
 * is due k / rate after the start, on connection k mod `connections`. A closed loop at
 * saturation (`runLoad`) lets each answer pace the next request, so its percentiles say as much
 * about throughput as about latency; at one rate below both sides' capacity they are the latency
 * a client sees at that load. A request that had to wait for its connection (the answer before
 * it came late) counts from its due time, so a slow server cannot hide its queue; otherwise it
 * counts from when it was sent, so the load generator's own timer lateness is not charged to the
 * server.
 */
export async function runAtRate(url: string, options: RateOptions): Promise<LoadRun> {
  assertLoopback(url);
  const connections = options.connections ?? 64;
  const headers = options.headers ?? {};
  const intervalMs = 1000 / options.ratePerSecond;
  const total = Math.floor(options.durationMs / intervalMs);
  const init: RequestInit = { headers };
  const record = new Recorder();
  const began = record.began;

  async function connection(first: number): Promise<void> {
    const sender = newSender(undefined, headers);
    let freeAt = began;
    try {
      for (let k = first; k < total; k += connections) {
        const due = began + k * intervalMs;
        // A timer may fire a fraction of a millisecond early: a request never leaves before it
        // is due.
        for (let wait = due - performance.now(); wait > 0; wait = due - performance.now()) {
          await new Promise((resolve) => setTimeout(resolve, Math.ceil(wait)));
        }
        const sent = performance.now();
        try {
          const status = await sender(url, init);
          if (status !== 200) record.fail(`status ${status}`);
        } catch (error) {
          record.failWith(error);
        }
        const done = performance.now();
        record.latencies.push(done - (freeAt > due ? due : sent));
        freeAt = done;
      }
    } finally {
      sender.close?.();
    }
  }

  await Promise.all(Array.from({ length: Math.min(connections, total) }, (_, i) => connection(i)));
  return record.run();
}

/** What a run records as it goes: every latency, the errors and the first one's message. */
class Recorder {
  readonly began = performance.now();
  readonly latencies = new Latencies();
  errors = 0;
  firstError?: string;

  fail(message: string): void {
    this.errors++;
    this.firstError ??= message;
  }

  failWith(error: unknown): void {
    this.fail(error instanceof Error ? error.message : String(error));
  }

  /** The run so far, timed from its start to now. */
  run(): LoadRun {
    return {
      requests: this.latencies.count,
      errors: this.errors,
      elapsedMs: performance.now() - this.began,
      latencies: this.latencies.values(),
      firstError: this.firstError,
    };
  }
}

/** Milliseconds in completion order, in an array grown on demand. */
class Latencies {
  // A closed loop on loopback rarely exceeds 100k requests per second.
  #all = new Float64Array(65_536);
  count = 0;

  push(ms: number): void {
    if (this.count === this.#all.length) {
      const bigger = new Float64Array(this.#all.length * 2);
      bigger.set(this.#all);
      this.#all = bigger;
    }
    this.#all[this.count++] = ms;
  }

  values(): Float64Array {
    return this.#all.subarray(0, this.count);
  }
}

/** Sends one request and reads its whole answer; resolves to the status. */
type Sender = ((url: string, init: RequestInit) => Promise<number>) & { close?: () => void };

function newSender(client: LoadOptions["client"], headers: Record<string, string>): Sender {
  return client === "fetch" || clientFromEnv() === "fetch" ? sendFetch : leanSender(headers);
}

function clientFromEnv(): string | undefined {
  try {
    return Deno.env.get("LOAD_CLIENT");
  } catch {
    return undefined; // no env permission: the default
  }
}

async function sendFetch(url: string, init: RequestInit): Promise<number> {
  const response = await fetch(url, init);
  // Read the whole body: a request is done when its last byte has arrived.
  await response.arrayBuffer();
  return response.status;
}

/** Encoded requests by URL, method, body and headers object; undefined: use fetch. */
const encoded = new Map<string, EncodedRequest | undefined>();
const headerIds = new WeakMap<object, number>();
let nextHeaderId = 1;

function encodeCached(
  url: string,
  init: RequestInit,
  headers: Record<string, string>,
): EncodedRequest | undefined {
  let id = 0;
  if (init.headers) {
    id = headerIds.get(init.headers) ?? nextHeaderId++;
    headerIds.set(init.headers, id);
  }
  const body = typeof init.body === "string" ? init.body : "";
  const key = `${init.method ?? "GET"} ${url} ${id}\n${body}`;
  if (encoded.has(key)) return encoded.get(key);
  // Mixed loads write distinct bodies: keep the cache from growing without end.
  if (encoded.size > 10_000) encoded.clear();
  const request = typeof init.body === "string" || init.body == null
    ? encodeRequest(url, init, headers)
    : undefined;
  encoded.set(key, request);
  return request;
}

/** A worker's lean client: one kept-alive connection per host and port, fetch as a fallback. */
function leanSender(headers: Record<string, string>): Sender {
  const connections = new Map<string, Http1Connection>();
  const sender: Sender = (url, init) => {
    const request = encodeCached(url, init, headers);
    if (!request) return sendFetch(url, init);
    const where = `${request.hostname}:${request.port}`;
    let connection = connections.get(where);
    if (!connection) {
      connection = new Http1Connection(request.hostname, request.port);
      connections.set(where, connection);
    }
    return connection.send(request);
  };
  sender.close = () => connections.forEach((connection) => connection.close());
  return sender;
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
