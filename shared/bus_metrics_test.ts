import assert from "node:assert/strict";
import { Bus } from "./bus.ts";
import { metrics, renderPrometheus } from "./metrics.ts";
import { startNatsServer } from "@testing/nats_server.ts";
import { recordingLogger } from "./testing.ts";

/** The value of a series with these labels, as the registry's snapshot gives it. */
async function figure(name: string, labels: Record<string, string> = {}): Promise<number> {
  const family = (await metrics.snapshot()).find((f) => f.name === name);
  assert.ok(family, `${name} is registered`);
  const series = family.series.find((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  assert.ok(series, `${name} ${JSON.stringify(labels)} has a series`);
  return series.value ?? 0;
}

/** Waits until `name` reads `want`, or fails after `ms`. */
async function until(name: string, want: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  let seen = await figure(name);
  while (seen !== want && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    seen = await figure(name);
  }
  assert.equal(seen, want, `${name} read ${seen} after ${ms} ms, not ${want}`);
}

Deno.test("[bus] metrics count one loss and one return of NATS, not each reconnect attempt", async () => {
  await using nats = await startNatsServer();
  const log = recordingLogger();
  const bus = await Bus.connect({ url: nats.url, prefix: "t", logger: log });
  let attempts = 0;
  const watching = (async () => {
    for await (const status of bus.nc.status()) if (status.type === "reconnecting") attempts++;
  })();
  try {
    await until("oe_bus_connected", 1);
    const disconnects = await figure("oe_bus_disconnects");
    const reconnects = await figure("oe_bus_reconnects");

    await nats.stop();
    await until("oe_bus_connected", 0);
    // nats.js tries again every 250 ms (shared/bus.ts): let it fail several times.
    const deadline = Date.now() + 10_000;
    while (attempts < 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(attempts >= 3, `nats.js tried to reconnect ${attempts} times`);
    assert.equal(await figure("oe_bus_disconnects"), disconnects + 1);
    assert.equal(await figure("oe_bus_reconnects"), reconnects);

    await nats.start();
    await until("oe_bus_connected", 1);
    assert.equal(await figure("oe_bus_reconnects"), reconnects + 1);
    assert.equal(await figure("oe_bus_disconnects"), disconnects + 1);
    // The same once-per-transition as the log lines.
    assert.equal(log.lines.filter((l) => l.message === "lost NATS; reconnecting").length, 1);
    assert.equal(log.lines.filter((l) => l.message === "NATS is back").length, 1);
  } finally {
    await bus.close();
    await watching;
  }
  // With no connection open the gauge has no value (not 0: nothing is lost).
  const gauge = (await metrics.snapshot()).find((f) => f.name === "oe_bus_connected");
  assert.deepEqual(gauge?.series, []);
});

Deno.test("[bus] metrics show what the connection carried, read by the bus collector", async () => {
  await using nats = await startNatsServer();
  const bus = await Bus.connect({ url: nats.url, prefix: "t", logger: recordingLogger() });
  try {
    const sent = await figure("oe_bus_messages", { direction: "out" });
    const sentBytes = await figure("oe_bus_bytes", { direction: "out" });
    const received = await figure("oe_bus_messages", { direction: "in" });
    const sub = bus.nc.subscribe("t.echo", { max: 1 });
    bus.nc.publish("t.echo", "hello");
    for await (const _ of sub) break;
    assert.equal(await figure("oe_bus_messages", { direction: "out" }), sent + 1);
    assert.equal(await figure("oe_bus_bytes", { direction: "out" }), sentBytes + 5);
    assert.equal(await figure("oe_bus_messages", { direction: "in" }), received + 1);
    assert.equal(await figure("oe_metrics_collector_up", { collector: "bus" }), 1);

    const text = renderPrometheus([{ labels: {}, families: await metrics.snapshot() }]);
    assert.match(text, /^oe_bus_connected 1$/m);
    assert.match(text, /^# TYPE oe_bus_disconnects_total counter$/m);
    assert.match(text, /^oe_bus_disconnects_total \d+$/m);
    assert.match(text, /^oe_bus_reconnects_total \d+$/m);
    assert.match(text, /^oe_bus_messages_total\{direction="in"\} \d+$/m);
    assert.match(text, /^oe_bus_bytes_total\{direction="out"\} \d+$/m);
    assert.match(text, /^oe_metrics_collector_up\{collector="bus"\} 1$/m);
  } finally {
    await bus.close();
  }
});
