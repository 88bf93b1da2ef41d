import assert from "node:assert/strict";
import type { LoadSummary } from "./load.ts";
import {
  CATALOG_TARGETS,
  compare,
  formatCpu,
  formatGatewayBudget,
  formatResult,
  formatTable,
  gatewayBudget,
  meets,
  withBare,
} from "./report.ts";

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

Deno.test("[bench] compare computes both ratios; meets checks them against the targets", () => {
  const met = compare("GET /x", summary(800, 20), summary(1000, 10));
  assert.equal(met.throughputRatio, 0.8);
  assert.equal(met.p99Ratio, 2);
  assert.equal(meets(met, CATALOG_TARGETS), true);
  assert.equal(
    meets(compare("GET /x", summary(500, 10), summary(1000, 10)), CATALOG_TARGETS),
    false,
  );
  assert.equal(
    meets(compare("GET /x", summary(800, 25), summary(1000, 10)), CATALOG_TARGETS),
    false,
  );
  // A bound left out is not judged.
  assert.equal(meets(compare("GET /x", summary(500, 25), summary(1000, 10)), {}), true);
  assert.equal(meets(met, { minThroughput: 2 }), false);
});

Deno.test("[bench] formatResult prints both targets with their verdicts", () => {
  const text = formatResult(compare("GET /x", summary(500, 10), summary(1000, 10)));
  assert.match(text, /^GET \/x/);
  assert.match(text, /throughput gateway\/baseline 0\.50x \(target >= 0\.75x: NOT met\)/);
  assert.match(text, /p99 {8}gateway\/baseline 1\.00x \(target <= 2x: met\)/);
});

Deno.test("[bench] formatResult judges only the targets it is given", () => {
  const result = compare("GET /x", summary(500, 30), summary(1000, 10));
  const signedIn = formatResult(result, { maxP99: 2 });
  assert.match(signedIn, /throughput gateway\/baseline 0\.50x\n/);
  assert.match(signedIn, /p99 {8}gateway\/baseline 3\.00x \(target <= 2x: NOT met\)/);
  assert.doesNotMatch(signedIn, /0\.75x/);
  const reads = formatResult(result, { minThroughput: 2, maxP99: 1 });
  assert.match(reads, /0\.50x \(target >= 2x: NOT met\)/);
  assert.match(reads, /3\.00x \(target <= 1x: NOT met\)/);
});

Deno.test("[bench] withBare relates both sides to the bare handler and prints it", () => {
  const result = withBare(compare("GET /x", summary(300, 20), summary(600, 10)), summary(1000, 5));
  assert.deepEqual(result.bareRatios, { baseline: 0.6, gateway: 0.3 });
  const text = formatResult(result);
  assert.match(text, /\n {2}bare {10}1000 /);
  assert.match(text, /throughput baseline\/bare 0\.60x, gateway\/bare 0\.30x/);
  assert.doesNotMatch(formatResult(compare("GET /x", summary(1, 1), summary(1, 1))), /bare/);
});

Deno.test("[bench] gatewayBudget leaves the gateway what the rest of the split did not spend", () => {
  const result = compare("GET /x", summary(300, 40), summary(900, 15));
  assert.equal(gatewayBudget(result, 2), undefined); // no CPU figures, no budget
  result.cpuMsPerRequest = {
    gateway: { gateway: 0.3, catalog: 0.2, postgres: 0.1, "load generator": 0.05 },
    baseline: { baseline: 0.12, postgres: 0.06, "load generator": 0.03 },
    floor: { floor: 0.02, "load generator": 0.02 },
  };
  const budget = gatewayBudget(result, 2)!;
  assert.ok(Math.abs(budget.allowed - 0.42) < 1e-9);
  assert.ok(Math.abs(budget.rest - 0.35) < 1e-9);
  assert.ok(Math.abs(budget.budget - 0.07) < 1e-9);
  assert.equal(budget.gateway, 0.3);
  assert.equal(budget.floor, 0.02);
  const text = formatGatewayBudget(result, 2);
  assert.match(text, /may spend 0\.420 ms; without the gateway it spent 0\.350/);
  assert.match(text, /leaving the gateway 0\.070 ms: it spent 0\.300; .* spent 0\.020$/);
});

Deno.test("[bench] a table and its CPU lines name the sides given, their figures in line", () => {
  const result = {
    ...compare("GET /x", summary(4501, 20), summary(5041, 22)),
    cpuMsPerRequest: { gateway: { gateway: 0.1 }, baseline: { "bus floor": 0.085 } },
  };
  const names = { gateway: "gateway", baseline: "bus floor" };
  const rows = formatTable(result, names).split("\n").slice(1);
  assert.match(rows[1], /^ {2}gateway +4501 /);
  assert.match(rows[2], /^ {2}bus floor +5041 /);
  // Each column ends where its heading does, whatever the longer name.
  const end = (line: string, word: string) => line.indexOf(word) + word.length;
  assert.equal(end(rows[1], "4501"), end(rows[0], "req/s"));
  assert.equal(end(rows[2], "5041"), end(rows[0], "req/s"));
  const cpu = formatCpu(result, names).split("\n");
  assert.match(cpu[2], /^ {2}gateway +0\.100 = gateway 0\.100$/);
  assert.match(cpu[3], /^ {2}bus floor 0\.085 = bus floor 0\.085$/);
  assert.equal(cpu[2].indexOf("0.100"), cpu[3].indexOf("0.085"));
  // Without names, as every other comparison prints.
  assert.match(formatTable(result).split("\n")[3], /^ {2}baseline +5041 /);
});
