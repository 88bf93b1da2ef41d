import assert from "node:assert/strict";
import {
  COLLECT_TIMEOUT_MS,
  EVENT_LOOP_SAMPLE_MS,
  metrics,
  Registry,
  renderPrometheus,
  serviceInstanceId,
} from "./metrics.ts";

Deno.test("[metrics] a histogram counts each observation in its bucket, cumulatively", async () => {
  const registry = new Registry();
  const latency = registry.histogram("demo_seconds", "Latency", ["endpoint"], [0.1, 1]);
  const echo = latency.series("demo.echo");
  for (const seconds of [0.05, 0.1, 0.5, 3]) echo.observe(seconds);
  const [family] = await registry.snapshot();
  assert.deepEqual(family.series, [{
    labels: { endpoint: "demo.echo" },
    buckets: [2, 3],
    sum: 3.65,
    count: 4,
  }]);
});

Deno.test("[metrics] renderPrometheus writes one HELP and TYPE per family over all processes", () => {
  const text = renderPrometheus([
    {
      labels: { service: "catalog", instance: "a" },
      families: [
        {
          name: "x_requests",
          help: "Requests",
          type: "counter",
          series: [{ labels: {}, value: 2 }],
        },
        {
          name: "x_seconds",
          help: "Latency",
          type: "histogram",
          bounds: [0.5],
          series: [{ labels: { endpoint: 'say "hi"' }, buckets: [1], sum: 0.25, count: 2 }],
        },
      ],
    },
    {
      labels: { service: "catalog", instance: "b" },
      families: [
        {
          name: "x_requests",
          help: "Requests",
          type: "counter",
          series: [{ labels: {}, value: 5 }],
        },
      ],
    },
  ]);
  assert.equal(
    text,
    [
      "# HELP x_requests_total Requests",
      "# TYPE x_requests_total counter",
      'x_requests_total{service="catalog",instance="a"} 2',
      'x_requests_total{service="catalog",instance="b"} 5',
      "# HELP x_seconds Latency",
      "# TYPE x_seconds histogram",
      'x_seconds_bucket{service="catalog",instance="a",endpoint="say \\"hi\\"",le="0.5"} 1',
      'x_seconds_bucket{service="catalog",instance="a",endpoint="say \\"hi\\"",le="+Inf"} 2',
      'x_seconds_sum{service="catalog",instance="a",endpoint="say \\"hi\\""} 0.25',
      'x_seconds_count{service="catalog",instance="a",endpoint="say \\"hi\\""} 2',
      "",
    ].join("\n"),
  );
});

Deno.test("[metrics] collectors run before a snapshot; a failing one keeps its last figure and is down", async () => {
  const registry = new Registry();
  const backlog = registry.gauge("demo_backlog", "Backlog").series();
  let reads = 0;
  const stop = registry.collect("demo", () => {
    reads++;
    if (reads === 2) return Promise.reject(new Error("database away"));
    backlog.set(reads * 10);
    return Promise.resolve();
  });
  const read = async () => {
    const families = await registry.snapshot();
    const up = families.find((f) => f.name === "oe_metrics_collector_up")?.series;
    return [families[0].series[0].value, up?.map((s) => [s.labels.collector, s.value])];
  };
  assert.deepEqual(await read(), [10, [["demo", 1]]]);
  assert.deepEqual(await read(), [10, [["demo", 0]]]);
  assert.deepEqual(await read(), [30, [["demo", 1]]]);
  stop();
  // A collector stopped is no collector down: its up series goes with it.
  assert.deepEqual(await read(), [30, []]);
  assert.equal(reads, 3);
});

Deno.test("[metrics] a collector late past COLLECT_TIMEOUT_MS is down for that snapshot", async () => {
  const registry = new Registry();
  const hung = Promise.withResolvers<void>();
  const stopHung = registry.collect("hung", () => hung.promise);
  const stopQuick = registry.collect("quick", () => Promise.resolve());
  const began = performance.now();
  const [up] = await registry.snapshot();
  assert.ok(performance.now() - began < COLLECT_TIMEOUT_MS + 500);
  assert.deepEqual(up.series, [
    { labels: { collector: "hung" }, value: 0 },
    { labels: { collector: "quick" }, value: 1 },
  ]);
  hung.resolve();
  stopHung();
  stopQuick();
});

Deno.test("[metrics] serviceInstanceId reads service.instance.id from OTEL_RESOURCE_ATTRIBUTES", () => {
  assert.equal(serviceInstanceId("service.instance.id=abc"), "abc");
  assert.equal(
    serviceInstanceId("deployment.environment=prod, service.instance.id = pod%2F7 ,team=x"),
    "pod/7",
  );
  assert.equal(serviceInstanceId("my.service.instance.id=abc"), undefined);
  assert.equal(serviceInstanceId("service.instance.id="), undefined);
  assert.equal(serviceInstanceId(""), undefined);
  assert.equal(serviceInstanceId(undefined), undefined);
});

Deno.test("[metrics] a blocked event loop shows in oe_event_loop_delay_seconds", async () => {
  const samples = async () => {
    const family = (await metrics.snapshot()).find((f) => f.name === "oe_event_loop_delay_seconds");
    const series = family!.series[0];
    const quarterSecond = family!.bounds!.indexOf(0.25);
    return {
      count: series.count!,
      overQuarterSecond: series.count! - series.buckets![quarterSecond],
    };
  };
  const before = await samples();
  // The one thread busy for 400 ms: the timer due within its first 100 ms fires 300 ms late or more.
  const blockedUntil = performance.now() + 400;
  while (performance.now() < blockedUntil) { /* busy */ }
  await new Promise((resolve) => setTimeout(resolve, 3 * EVENT_LOOP_SAMPLE_MS));
  const after = await samples();
  assert.ok(after.count >= before.count + 2, `sampled on: ${before.count} then ${after.count}`);
  assert.ok(
    after.overQuarterSecond > before.overQuarterSecond,
    "the blocked sample is over 0.25 s",
  );
});
