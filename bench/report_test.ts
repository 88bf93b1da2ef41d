import assert from "node:assert/strict";
import type { LoadSummary } from "./load.ts";
import { compare, formatResult, withBare } from "./report.ts";

function summary(rps: number, p99Ms: number): LoadSummary {
  return {
    requests: rps * 5,
    errors: 0,
    rps,
    p50Ms: p99Ms / 4,
    p90Ms: p99Ms / 2,
    p99Ms,
    maxMs: p99Ms,
  };
}

Deno.test("[bench] compare computes both ratios and checks them against the targets", () => {
  const met = compare("GET /x", summary(800, 20), summary(1000, 10));
  assert.equal(met.throughputRatio, 0.8);
  assert.equal(met.p99Ratio, 2);
  assert.equal(met.throughputMet, true);
  assert.equal(met.p99Met, true);
  const missed = compare("GET /x", summary(500, 25), summary(1000, 10));
  assert.equal(missed.throughputMet, false);
  assert.equal(missed.p99Met, false);
});

Deno.test("[bench] formatResult prints both targets with their verdicts", () => {
  const text = formatResult(compare("GET /x", summary(500, 10), summary(1000, 10)));
  assert.match(text, /^GET \/x/);
  assert.match(text, /throughput gateway\/baseline 0\.50x \(target >= 0\.75x: NOT met\)/);
  assert.match(text, /p99 {8}gateway\/baseline 1\.00x \(target <= 2x: met\)/);
});

Deno.test("[bench] withBare relates both sides to the bare handler and prints it", () => {
  const result = withBare(compare("GET /x", summary(300, 20), summary(600, 10)), summary(1000, 5));
  assert.deepEqual(result.bareRatios, { baseline: 0.6, gateway: 0.3 });
  const text = formatResult(result);
  assert.match(text, /\n {2}bare {10}1000 /);
  assert.match(text, /throughput baseline\/bare 0\.60x, gateway\/bare 0\.30x/);
  assert.doesNotMatch(formatResult(compare("GET /x", summary(1, 1), summary(1, 1))), /bare/);
});
