/**
 * Turns the two summaries of a scenario into ratios and checks them against a benchmark's
 * targets; prints them as a table. The targets are ratios measured in one run, so a faster or slower machine
 * moves both sides alike.
 */
import type { LoadSummary } from "./load.ts";

/** Gateway throughput at least this share of the baseline's. */
const MIN_THROUGHPUT_RATIO = 0.75;
/** Gateway p99 at most this multiple of the baseline's. */
const MAX_P99_RATIO = 2;

export interface ScenarioResult {
  scenario: string;
  gateway: LoadSummary;
  baseline: LoadSummary;
  /** Gateway req/s divided by baseline req/s. */
  throughputRatio: number;
  /** Gateway p99 divided by baseline p99. */
  p99Ratio: number;
  /** The bare handler (bench/bare.ts), where a scenario has one: the floor under both sides. */
  bare?: LoadSummary;
  /** Req/s of each side divided by the bare handler's. */
  bareRatios?: { baseline: number; gateway: number };
  /** With --cpu: CPU milliseconds per request of each process, while each target was loaded. */
  cpuMsPerRequest?: {
    gateway: Record<string, number>;
    baseline: Record<string, number>;
    bare?: Record<string, number>;
    /**
     * A Hono app on `Deno.serve` answering from memory (bench/hono_floor.ts), loaded alone: the
     * least any gateway built on them spends per request.
     */
    floor?: Record<string, number>;
  };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** The gateway path against the baseline for one scenario, as ratios. */
export function compare(
  scenario: string,
  gateway: LoadSummary,
  baseline: LoadSummary,
): ScenarioResult {
  const throughputRatio = round2(gateway.rps / baseline.rps);
  const p99Ratio = round2(gateway.p99Ms / baseline.p99Ms);
  return {
    scenario,
    gateway,
    baseline,
    throughputRatio,
    p99Ratio,
  };
}

/** Adds the bare handler's run to a scenario, with both sides' throughput relative to it. */
export function withBare(result: ScenarioResult, bare: LoadSummary): ScenarioResult {
  return {
    ...result,
    bare,
    bareRatios: {
      baseline: round2(result.baseline.rps / bare.rps),
      gateway: round2(result.gateway.rps / bare.rps),
    },
  };
}

function pad(value: string | number, width: number): string {
  return String(value).padStart(width);
}

/** What a table and the CPU lines call the two sides of a comparison. */
export interface SideNames {
  gateway: string;
  baseline: string;
}

const SIDE_NAMES: SideNames = { gateway: "gateway", baseline: "baseline" };

/** The width of a table's first column: the longer side's name and a space, at least 9. */
function labelWidth(names: SideNames): number {
  return Math.max(9, names.gateway.length + 1, names.baseline.length + 1);
}

/** The scenario's name and its sides' figures as a small fixed-width table. */
export function formatTable(result: ScenarioResult, names: SideNames = SIDE_NAMES): string {
  const width = labelWidth(names);
  const row = (name: string, s: LoadSummary) =>
    `  ${name.padEnd(width)}${pad(s.rps, 9)}${pad(s.p50Ms.toFixed(2), 9)}${
      pad(s.p90Ms.toFixed(2), 9)
    }${pad(s.p99Ms.toFixed(2), 9)}${pad(s.requests, 10)}${pad(s.errors, 8)}`;
  return [
    result.scenario,
    `  ${"".padEnd(width)}${pad("req/s", 9)}${pad("p50 ms", 9)}${pad("p90 ms", 9)}${
      pad("p99 ms", 9)
    }${pad("requests", 10)}${pad("errors", 8)}`,
    row(names.gateway, result.gateway),
    row(names.baseline, result.baseline),
    ...(result.bare ? [row("bare", result.bare)] : []),
  ].join("\n");
}

/**
 * The bounds a scenario is judged by; a ratio without one is printed as information. The
 * default is the catalog comparison's (bench/main.ts); other benchmarks name their own.
 */
export interface Targets {
  /** Gateway throughput at least this multiple of the baseline's. */
  minThroughput?: number;
  /** Gateway p99 at most this multiple of the baseline's. */
  maxP99?: number;
}

export const CATALOG_TARGETS: Targets = {
  minThroughput: MIN_THROUGHPUT_RATIO,
  maxP99: MAX_P99_RATIO,
};

/** Whether `result` meets every bound of `targets`. */
export function meets(result: ScenarioResult, targets: Targets): boolean {
  const { minThroughput, maxP99 } = targets;
  return (minThroughput === undefined || result.throughputRatio >= minThroughput) &&
    (maxP99 === undefined || result.p99Ratio <= maxP99);
}

/** One scenario as a small fixed-width table, with its ratios and, where set, their targets. */
export function formatResult(result: ScenarioResult, targets: Targets = CATALOG_TARGETS): string {
  const verdict = (met: boolean) => met ? "met" : "NOT met";
  const { minThroughput, maxP99 } = targets;
  return [
    formatTable(result),
    `  throughput gateway/baseline ${result.throughputRatio.toFixed(2)}x` +
    (minThroughput === undefined
      ? ""
      : ` (target >= ${minThroughput}x: ${verdict(result.throughputRatio >= minThroughput)})`),
    `  p99        gateway/baseline ${result.p99Ratio.toFixed(2)}x` +
    (maxP99 === undefined ? "" : ` (target <= ${maxP99}x: ${verdict(result.p99Ratio <= maxP99)})`),
    ...(result.bareRatios
      ? [
        `  throughput baseline/bare ${result.bareRatios.baseline.toFixed(2)}x, ` +
        `gateway/bare ${result.bareRatios.gateway.toFixed(2)}x`,
      ]
      : []),
  ].join("\n");
}

/** The CPU lines of a result (empty without --cpu): each process's share, and the sum. */
export function formatCpu(result: ScenarioResult, names: SideNames = SIDE_NAMES): string {
  if (!result.cpuMsPerRequest) return "";
  const width = labelWidth(names);
  const line = (name: string, used: Record<string, number>) => {
    const total = Object.values(used).reduce((a, b) => a + b, 0);
    const parts = Object.entries(used).map(([role, ms]) => `${role} ${ms.toFixed(3)}`);
    return `  ${name.padEnd(width)}${total.toFixed(3)} = ${parts.join(" + ")}`;
  };
  return [
    "",
    "  CPU ms per request (nats-server counts whatever else uses it too):",
    line(names.gateway, result.cpuMsPerRequest.gateway),
    line(names.baseline, result.cpuMsPerRequest.baseline),
    ...(result.cpuMsPerRequest.bare ? [line("bare", result.cpuMsPerRequest.bare)] : []),
    ...(result.cpuMsPerRequest.floor ? [line("floor", result.cpuMsPerRequest.floor)] : []),
  ].join("\n");
}

const sum = (used: Record<string, number>) => Object.values(used).reduce((a, b) => a + b, 0);

/**
 * What the gateway may spend per request for the split to spend at most `maxRatio` times the
 * single process's CPU, given what the rest of the split spent; and what it and the floor spent.
 * Where both sides saturate the cores (a closed loop here), latency follows CPU per request, so
 * this is the gateway's share of a p99 target. Undefined without the CPU figures.
 */
export function gatewayBudget(result: ScenarioResult, maxRatio: number) {
  const cpu = result.cpuMsPerRequest;
  if (!cpu || cpu.gateway.gateway === undefined) return undefined;
  const allowed = maxRatio * sum(cpu.baseline);
  const rest = sum(cpu.gateway) - cpu.gateway.gateway;
  return {
    allowed,
    rest,
    budget: allowed - rest,
    gateway: cpu.gateway.gateway,
    floor: cpu.floor?.floor,
  };
}

/** `gatewayBudget` as lines of the report ("" without the CPU figures). */
export function formatGatewayBudget(result: ScenarioResult, maxRatio: number): string {
  const b = gatewayBudget(result, maxRatio);
  if (!b) return "";
  const ms = (n: number) => n.toFixed(3);
  const floor = b.floor === undefined
    ? ""
    : `; Hono on Deno.serve answering from memory (the floor) spent ${ms(b.floor)}`;
  return [
    "",
    `  CPU budget: at ${maxRatio}x the single process the split may spend ${ms(b.allowed)} ms; ` +
    `without the gateway it spent ${ms(b.rest)},`,
    `  leaving the gateway ${ms(b.budget)} ms: it spent ${ms(b.gateway)}${floor}`,
  ].join("\n");
}
