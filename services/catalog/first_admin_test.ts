import assert from "node:assert/strict";
import { factStreamRemoval, testBackends, testDatabase } from "@shared/testing.ts";
import { eventually } from "@testing/eventually.ts";
import { startOtlpReceiver } from "@testing/otlp_receiver.ts";

// Found by a review: the password of a first admin made at start was written with console.log,
// which Deno's OpenTelemetry ships as a log record: a super admin's password in the telemetry
// backend. It must reach the terminal only.
Deno.test("[catalog] a generated first admin's password is on stdout and in no exported log", async () => {
  const { natsUrl } = await testBackends();
  await using otlp = startOtlpReceiver();
  await using database = await testDatabase();
  const prefix = `adm${crypto.randomUUID().slice(0, 8)}`;
  await using _streams = factStreamRemoval(natsUrl, prefix);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "services/catalog/main.ts"],
    cwd: new URL("../../", import.meta.url),
    env: {
      DATABASE_URL: database.url,
      NATS_URL: natsUrl,
      BUS_PREFIX: prefix,
      JWT_SECRET: crypto.randomUUID(),
      PASSWORD_ITERATIONS: "1000",
      LOG_LEVEL: "info",
      OTEL_DENO: "true",
      OTEL_SERVICE_NAME: "catalog",
      ...otlp.env,
    },
    clearEnv: false,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    let out = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const shown = /First admin created: \S+ \/ (\S+)/;
    while (!shown.test(out)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the catalog ended before showing the first admin: ${out}`);
      out += value;
    }
    const password = shown.exec(out)![1];
    // Telemetry flows (a metric exported), and a log export has had five times its delay.
    await eventually(() => otlp.metrics.size > 0, 10_000, "a metric exported");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(otlp.logs.some((text) => text.includes(password)), false);
    reader.releaseLock();
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
});
