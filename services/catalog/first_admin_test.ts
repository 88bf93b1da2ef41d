import assert from "node:assert/strict";
import { factStreamRemoval, testBackends, testDatabase } from "@shared/testing.ts";
import { eventually } from "@testing/eventually.ts";
import { startOtlpReceiver } from "@testing/otlp_receiver.ts";

const CANARY = "catalog ready: exported-log canary";

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
    // The catalog's own main, then one console line once it is ready (after the first admin):
    // the service logs to stderr itself, so that line is what shows console output is exported.
    args: ["eval", `await import("./services/catalog/main.ts"); console.log("${CANARY}");`],
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
    const deadline = Date.now() + 60_000;
    while (!shown.test(out)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no first admin shown within 60 s: ${out}`)),
          Math.max(0, deadline - Date.now()),
        );
      });
      const { value, done } = await Promise.race([reader.read(), late])
        .finally(() => clearTimeout(timer));
      if (done) throw new Error(`the catalog ended before showing the first admin: ${out}`);
      out += value;
    }
    const password = shown.exec(out)![1];
    // Console output is exported, up to a line written after the password was shown: a
    // console.log of the password would be in these exports, so its absence means something.
    await eventually(
      () => otlp.logs.some((text) => text.includes(CANARY)),
      15_000,
      "the console line written once the catalog is ready, exported",
    );
    assert.equal(otlp.logs.some((text) => text.includes(password)), false);
    reader.releaseLock();
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
});

/** The catalog started with `env` (and nothing else it could reach): its exit code and stderr. */
async function catalogStartWith(env: Record<string, string>) {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "services/catalog/main.ts"],
    cwd: new URL("../../", import.meta.url),
    // A database and NATS nobody listens on: the settings must be refused before either is tried.
    env: {
      DATABASE_URL: "postgres://postgres@127.0.0.1:9/none",
      NATS_URL: "nats://127.0.0.1:9",
      JWT_SECRET: crypto.randomUUID(),
      ...env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code, stderr: new TextDecoder().decode(stderr).trim() };
}

// Found by an operator review: ADMIN_EMAIL=notanemail ADMIN_PASSWORD=x made that super admin, with
// a password of one character, where sign-up and a password change ask for an email address and 8
// characters at least.
Deno.test("[catalog] a first admin sign-up would refuse stops the catalog at start, in one line", async (t) => {
  await t.step("an ADMIN_EMAIL that is no email address", async () => {
    const { code, stderr } = await catalogStartWith({
      ADMIN_EMAIL: "notanemail",
      ADMIN_PASSWORD: "long-enough",
    });
    assert.equal(code, 1);
    assert.match(stderr, /^catalog: Cannot read ADMIN_EMAIL: "notanemail" is not an email address/);
    assert.equal(stderr.split("\n").length, 1, stderr);
  });
  await t.step("an ADMIN_PASSWORD shorter than 8 characters, never quoted", async () => {
    const { code, stderr } = await catalogStartWith({
      ADMIN_EMAIL: "admin@example.com",
      ADMIN_PASSWORD: "x2Secr",
    });
    assert.equal(code, 1);
    assert.match(stderr, /^catalog: Cannot read ADMIN_PASSWORD: .*8 characters/);
    assert.ok(!stderr.includes("x2Secr"), stderr);
    assert.equal(stderr.split("\n").length, 1, stderr);
  });
  // A password longer than sign-up and login take (1,024 characters) made an admin nobody can
  // sign in as: every login with it is refused.
  await t.step("an ADMIN_PASSWORD longer than 1024 characters, never quoted", async () => {
    const { code, stderr } = await catalogStartWith({
      ADMIN_EMAIL: "admin@example.com",
      ADMIN_PASSWORD: "y".repeat(1025),
    });
    assert.equal(code, 1);
    assert.match(stderr, /^catalog: Cannot read ADMIN_PASSWORD: .*1024 characters/);
    assert.ok(!stderr.includes("y".repeat(1025)), stderr);
    assert.equal(stderr.split("\n").length, 1, stderr);
  });
});

// Found by a review: one of the two alone was passed over without a word. ADMIN_EMAIL alone did
// nothing once any admin existed (that account was never made an admin), and ADMIN_PASSWORD alone
// was replaced by a generated password, or did nothing.
Deno.test("[catalog] ADMIN_EMAIL without ADMIN_PASSWORD, or the other way round, stops the catalog at start", async (t) => {
  await t.step("ADMIN_EMAIL alone", async () => {
    const { code, stderr } = await catalogStartWith({ ADMIN_EMAIL: "admin@example.com" });
    assert.equal(code, 1);
    assert.match(stderr, /^catalog: Cannot read ADMIN_EMAIL: .*ADMIN_PASSWORD/);
    assert.equal(stderr.split("\n").length, 1, stderr);
  });
  await t.step("ADMIN_PASSWORD alone, never quoted", async () => {
    const { code, stderr } = await catalogStartWith({ ADMIN_PASSWORD: "long-enough-secret" });
    assert.equal(code, 1);
    assert.match(stderr, /^catalog: Cannot read ADMIN_PASSWORD: .*ADMIN_EMAIL/);
    assert.ok(!stderr.includes("long-enough-secret"), stderr);
    assert.equal(stderr.split("\n").length, 1, stderr);
  });
});
