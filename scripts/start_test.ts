/**
 * `deno task start` as a user runs it: a whole system on an embedded Postgres and a private
 * nats-server (data in a temp folder) that keeps a write across a restart, and every start-up
 * failure a user can cause ending with one plain line and exit code 1. The shared Postgres on
 * 5432 is only read (a login that is refused, the `postgres` database that exists); NATS is
 * always a private nats-server on a free port.
 */
import { openDatabase } from "@shared/db.ts";
import { STOP_AT_STDIN_END } from "@shared/lifecycle.ts";
import { freePort } from "@shared/net.ts";
import { testDatabase } from "@shared/testing.ts";
import { eventually } from "@testing/eventually.ts";
import { startNatsServer } from "@testing/nats_server.ts";
import { spawnProcess } from "@testing/processes.ts";
import { createSecretBox } from "../services/payments/crypto.ts";
import { migratePayments, SCHEMA as PAYMENTS_SCHEMA } from "../services/payments/service.ts";
import assert from "node:assert/strict";
import { answers } from "./embedded.ts";

const root = new URL("../", import.meta.url);
const decoder = new TextDecoder();

/** The environment of a user's shell, without whatever the test run itself was given. */
function baseEnv(extra: Record<string, string>): Record<string, string> {
  const keep = ["PATH", "HOME", "DENO_DIR", "TMPDIR"];
  const env: Record<string, string> = { NO_COLOR: "1", LOG_LEVEL: "warn" };
  for (const name of keep) {
    const value = Deno.env.get(name);
    if (value) env[name] = value;
  }
  return { ...env, ...extra };
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a script the way its task does, bounded in time. */
async function run(script: string, env: Record<string, string>): Promise<Outcome> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", script],
    cwd: root,
    env: baseEnv(env),
    clearEnv: true,
    stdin: "null",
    signal: AbortSignal.timeout(90_000),
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Exit code 1, one line on stderr that matches `cause`, and no stack trace anywhere. */
/** The gateway's one line for a listening address in use, naming the setting to change. */
function assertPortInUse(outcome: Outcome, port: number, setting: string): void {
  assertOneLine(
    outcome,
    new RegExp(
      `^gateway: Cannot listen on 127\\.0\\.0\\.1:${port}: it is in use\\. ` +
        `Stop what uses it, or set ${setting} to a free port\\.$`,
    ),
  );
}

function assertOneLine(outcome: Outcome, cause: RegExp): void {
  const all = outcome.stdout + outcome.stderr;
  // Deno's own progress lines appear only while a cold cache fills; they are not ours.
  const lines = outcome.stderr.split("\n")
    .filter((line) => line.trim() && !/^(Download|Initialize) /.test(line));
  assert.equal(outcome.code, 1, all);
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${outcome.stderr}`);
  assert.match(lines[0], cause);
  assert.doesNotMatch(all, /Uncaught|^\s+at /m);
}

/** Runs `deno task start` with `env`, expecting it to fail with one line matching `cause`. */
async function startFails(env: Record<string, string>, cause: RegExp): Promise<Outcome> {
  const outcome = await run("scripts/start.ts", env);
  assertOneLine(outcome, cause);
  return outcome;
}

/** A folder the `postgres` OS user can enter too (Postgres runs as that user under root). */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "oe_start_" });
  await Deno.chmod(path, 0o755);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** A running `deno task start`: resolves once it says it is ready, stops on SIGINT. */
async function startUntilReady(env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", "scripts/start.ts"],
    cwd: root,
    env: baseEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errors = "";
  const stderr = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) errors += chunk;
  })();
  let stdout = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + 150_000;
  while (!stdout.includes("Open Event API ready")) {
    const next = await Promise.race([
      reader.read(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("start timed out")), deadline - Date.now())
      ),
    ]).catch(async (error) => {
      child.kill("SIGKILL");
      await stderr;
      throw new Error(`${error.message}\n${stdout}\n${errors}`);
    });
    if (next.done) {
      await stderr;
      throw new Error(`start ended early:\n${stdout}\n${errors}`);
    }
    stdout += next.value;
  }
  const rest = (async () => {
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      stdout += next.value;
    }
  })();
  return {
    pid: child.pid,
    stdout: () => stdout,
    stderr: () => errors,
    /** Kills start with `signal`, nothing else: what it started is left to stop on its own. */
    async kill(signal: Deno.Signal): Promise<void> {
      child.kill(signal);
      await child.status;
      await rest;
      await stderr;
    },
    async stop(): Promise<number> {
      child.kill("SIGINT");
      const { code } = await child.status;
      await rest;
      await stderr;
      return code;
    },
  };
}

/** The processes `pid` started that are still its children (Linux: /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const pids: number[] = [];
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    const text = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/children`);
    pids.push(...text.split(" ").filter(Boolean).map(Number));
  }
  return pids;
}

/** True while `pid` runs (a zombie that nobody reaped has ended). */
async function running(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  return stat !== "" && stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
}

/** Those of `pids` still running after `timeoutMs`. */
async function survivors(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = pids;
  while (true) {
    const states = await Promise.all(left.map(running));
    left = left.filter((_, i) => states[i]);
    if (!left.length || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Kills what `pid` runs: its process group when it leads one (the embedded servers' wrappers). */
function killTree(pid: number): void {
  try {
    Deno.kill(-pid, "SIGKILL");
  } catch {
    Deno.kill(pid, "SIGKILL");
  }
}

async function api(url: string, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      "Content-Type": path.startsWith("/v1/auth") ? "application/json" : "application/vnd.api+json",
      ...(token ? { Authorization: `JWT ${token}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

Deno.test({
  name: "[start] deno task start on an embedded Postgres serves /health and keeps a write",
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir();
    const gateway = freePort();
    const pgPort = freePort();
    const env = {
      DATABASE_URL: "embedded",
      NATS_URL: "embedded",
      EMBEDDED_DATA_DIR: dir.path,
      EMBEDDED_PG_PORT: String(pgPort),
      EMBEDDED_NATS_PORT: String(freePort()),
      PORT: String(gateway),
      BUS_PREFIX: `start_${crypto.randomUUID().slice(0, 8)}`,
      JWT_SECRET: crypto.randomUUID(),
      ADMIN_EMAIL: "start-admin@example.com",
      ADMIN_PASSWORD: crypto.randomUUID(),
      PASSWORD_ITERATIONS: "1000",
      LOG_LEVEL: "info",
    };
    const url = `http://127.0.0.1:${gateway}`;
    const login = async () =>
      (await api(url, "POST", "/v1/auth/login", undefined, {
        email: env.ADMIN_EMAIL,
        password: env.ADMIN_PASSWORD,
      })).body.access_token as string;

    const first = await startUntilReady(env);
    let stopped = false;
    try {
      assert.match(first.stdout(), new RegExp(`embedded Postgres on 127\\.0\\.0\\.1:${pgPort}`));
      assert.equal((await api(url, "GET", "/health")).status, 200);
      const created = await api(url, "POST", "/v1/event-topics", await login(), {
        data: { type: "event-topic", attributes: { name: "Survives restarts" } },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      // A second start on the same data folder is refused in one line: the first holds it.
      const twice = await run("scripts/start.ts", {
        ...env,
        PORT: String(freePort()),
        EMBEDDED_PG_PORT: String(freePort()),
        EMBEDDED_NATS_PORT: String(freePort()),
      });
      assertOneLine(twice, new RegExp(`another start uses .* \\(pid ${first.pid}\\)`));
      assert.equal(await first.stop(), 0);
      stopped = true;
    } finally {
      if (!stopped) await first.stop();
    }
    // Ctrl-C stopped the Postgres too, after the services: nothing listens on its port.
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: pgPort }));
    const servicesStopped = [
      ...first.stderr().matchAll(/"time":"([^"]+)"[^\n]*"message":"stopped"/g),
    ]
      .map((match) => Date.parse(match[1]));
    assert.equal(servicesStopped.length, 5, "every service and the gateway say they stopped");
    const serverLog = await Deno.readTextFile(`${dir.path}/postgres/server.log`);
    const shutdown = serverLog.match(/^(\S+ \S+) UTC .*received fast shutdown request/m);
    assert.ok(shutdown, "the embedded Postgres logged its shutdown");
    assert.ok(
      Date.parse(`${shutdown[1].replace(" ", "T")}Z`) >= Math.max(...servicesStopped),
      "the Postgres stopped only after the services",
    );

    const second = await startUntilReady(env);
    try {
      const topics = await api(url, "GET", "/v1/event-topics");
      assert.equal(topics.status, 200);
      const names = topics.body.data.map((topic: { attributes: { name: string } }) =>
        topic.attributes.name
      );
      assert.deepEqual(names, ["Survives restarts"]);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  },
});

Deno.test({
  name: "[start] a start-up failure a user can cause ends with one line and exit code 1",
  sanitizeResources: false,
  async fn(t) {
    await using dir = await tempDir();
    await using nats = await startNatsServer({ jetStream: true });
    await using guarded = await startNatsServer({
      jetStream: true,
      login: { user: "oe", password: "right" },
    });
    await using plain = await startNatsServer();
    const nobody = `postgres://postgres@127.0.0.1:${freePort()}/open_event`;
    // Only read: a database that exists, so start checks it and creates nothing.
    const shared = "postgres://postgres@127.0.0.1:5432/postgres";
    const sharedThere = await answers("127.0.0.1", 5432);
    const common = { PORT: String(freePort()), BUS_PREFIX: `fail_${crypto.randomUUID()}` };

    await t.step("a database that does not answer", async () => {
      await startFails({
        ...common,
        DATABASE_URL: nobody,
        NATS_URL: nats.url,
      }, /Cannot open the database at .*: nothing answers there\. .*DATABASE_URL/);
    });
    await t.step({
      name: "a database that refuses the login",
      ignore: !sharedThere,
      fn: async () => {
        await startFails({
          ...common,
          DATABASE_URL: "postgres://no_such_role_oe:wrong@127.0.0.1:5432/postgres",
          NATS_URL: nats.url,
        }, /Cannot open the database at .*: it refused the login.*DATABASE_URL/);
      },
    });
    await t.step({
      name: "a NATS that does not answer",
      ignore: !sharedThere,
      fn: async () => {
        await startFails({
          ...common,
          DATABASE_URL: shared,
          NATS_URL: `nats://127.0.0.1:${freePort()}`,
        }, /Cannot connect to NATS at .*: nothing answers there\. .*NATS_URL/);
      },
    });
    await t.step({
      name: "a NATS that refuses the login",
      ignore: !sharedThere,
      fn: async () => {
        const outcome = await startFails({
          ...common,
          DATABASE_URL: shared,
          NATS_URL: guarded.url.replace("nats://", "nats://oe:wrong@"),
        }, /Cannot connect to NATS at .*: it refused the login.*NATS_URL/);
        assert.doesNotMatch(outcome.stderr, /wrong/, "the password must not be printed");
      },
    });
    await t.step({
      // The first connection gets in, the second (its JetStream traffic's) is refused: named as
      // such, not as JetStream missing (a review, 2026-12-06).
      name: "a NATS with room for one connection, where each process needs two",
      ignore: !sharedThere,
      fn: async () => {
        await using full = await startNatsServer({ jetStream: true, maxConnections: 1 });
        await startFails(
          {
            ...common,
            DATABASE_URL: shared,
            NATS_URL: full.url,
          },
          /Cannot connect to NATS at .*: it refused the connection \(maximum connections exceeded\)/,
        );
      },
    });
    await t.step({
      name: "a NATS without JetStream",
      ignore: !sharedThere,
      fn: async () => {
        await startFails({
          ...common,
          DATABASE_URL: shared,
          NATS_URL: plain.url,
        }, /Cannot use NATS at .*: JetStream is not enabled there\. .*-js/);
      },
    });
    await t.step("the gateway's port in use", async () => {
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      await startFails({
        ...common,
        PORT: String(port),
        DATABASE_URL: nobody,
        NATS_URL: nats.url,
      }, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use.*PORT`));
    });
    await t.step("the embedded Postgres's port in use", async () => {
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      await startFails({
        ...common,
        DATABASE_URL: "embedded",
        EMBEDDED_DATA_DIR: dir.path,
        EMBEDDED_PG_PORT: String(port),
        NATS_URL: nats.url,
      }, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use.*EMBEDDED_PG_PORT`));
    });
    await t.step("a PORT that is not a number", async () => {
      await startFails({ ...common, PORT: "eighty" }, /Cannot read PORT: "eighty".*Correct PORT/);
    });
    await t.step("a malformed PAYMENTS_ENCRYPTION_KEY", async () => {
      await startFails({
        ...common,
        PAYMENTS_ENCRYPTION_KEY: "too-short",
      }, /Cannot read PAYMENTS_ENCRYPTION_KEY: .*32 bytes/);
    });
    await t.step("a malformed DATABASE_URL", async () => {
      await startFails({
        ...common,
        DATABASE_URL: "postgres://postgres@127.0.0.1:notaport/x",
        NATS_URL: nats.url,
      }, /Cannot open the database: the URL is malformed\. Correct DATABASE_URL/);
    });
    await t.step("production mode without its secrets", async () => {
      await startFails({
        ...common,
        OE_ENV: "production",
        JWT_SECRET: "set",
        DATABASE_URL: nobody,
        NATS_URL: nats.url,
      }, /production mode.*PAYMENTS_ENCRYPTION_KEY not set/);
    });
    await t.step("a single service whose database does not answer", async () => {
      const outcome = await run("services/audit/main.ts", {
        DATABASE_URL: nobody,
        NATS_URL: nats.url,
      });
      assertOneLine(outcome, /^audit: Cannot open the database at .*: nothing answers there/);
    });
    // Found following the README (2026-12-05): the catalog alone without JWT_SECRET, which
    // `start` makes up but a process run by hand must be given, ended with a JSON log line that
    // named no fix.
    await t.step("the catalog alone without JWT_SECRET says to set it", async () => {
      const outcome = await run("services/catalog/main.ts", {
        DATABASE_URL: nobody,
        NATS_URL: nats.url,
      });
      assertOneLine(
        outcome,
        /^catalog: Cannot start: JWT_SECRET is not set, .*\. Set JWT_SECRET to the secret the gateway verifies tokens with\.$/,
      );
    });
    await t.step("a single service whose own database URL fails names that setting", async () => {
      const outcome = await run("services/audit/main.ts", {
        DATABASE_URL: shared,
        AUDIT_DATABASE_URL: nobody.replace("postgres@", "postgres:pw-SECRET-1234@"),
        NATS_URL: nats.url,
      });
      assertOneLine(
        outcome,
        /^audit: Cannot open the database at 127\.0\.0\.1:\d+: nothing answers there\. Start it, or set AUDIT_DATABASE_URL to one that does\.$/,
      );
      assert.doesNotMatch(outcome.stderr, /SECRET/);
    });
    await t.step({
      name: "start: a service's own database URL that fails names that setting",
      ignore: !sharedThere,
      fn: async () => {
        await startFails({
          ...common,
          DATABASE_URL: shared,
          PAYMENTS_DATABASE_URL: nobody,
          NATS_URL: nats.url,
        }, /Cannot open the database at .*: nothing answers there\. .*set PAYMENTS_DATABASE_URL/);
      },
    });
    await t.step("the gateway alone whose NATS refuses the login says where", async () => {
      const outcome = await run("gateway/main.ts", {
        PORT: String(freePort()),
        NATS_URL: guarded.url.replace("nats://", "nats://oe:pw-SECRET-wrong@"),
        JWT_SECRET: "set",
      });
      assertOneLine(outcome, /^gateway: Cannot connect to NATS at 127\.0\.0\.1:\d+: it refused/);
      assert.doesNotMatch(outcome.stderr, /SECRET/);
    });
    await t.step("the gateway alone with a bad setting, then with its port in use", async () => {
      const bad = await run("gateway/main.ts", { PORT: "-1", NATS_URL: nats.url });
      assertOneLine(bad, /^gateway: Cannot read PORT/);
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      const busy = await run("gateway/main.ts", {
        PORT: String(port),
        NATS_URL: nats.url,
        BUS_PREFIX: common.BUS_PREFIX,
        JWT_SECRET: "set",
      });
      assertPortInUse(busy, port, "PORT");
    });
    // Found following the README (2026-12-04): a METRICS_ADDR in use told the operator to set
    // PORT, which was free, and named no address.
    await t.step("the gateway alone with its METRICS_ADDR in use", async () => {
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      const busy = await run("gateway/main.ts", {
        PORT: String(freePort()),
        METRICS_ADDR: `127.0.0.1:${port}`,
        NATS_URL: nats.url,
        BUS_PREFIX: common.BUS_PREFIX,
        JWT_SECRET: "set",
      });
      assertPortInUse(busy, port, "METRICS_ADDR");
    });
    // An address not of this machine was blamed on HOST, which was fine (a last look, 2026-12-04).
    await t.step(
      "the gateway alone with its METRICS_ADDR on another machine's address",
      async () => {
        const elsewhere = await run("gateway/main.ts", {
          PORT: String(freePort()),
          METRICS_ADDR: "192.0.2.1:9100",
          NATS_URL: nats.url,
          BUS_PREFIX: common.BUS_PREFIX,
          JWT_SECRET: "set",
        });
        assertOneLine(
          elsewhere,
          /^gateway: Cannot listen on 192\.0\.2\.1:9100: .*Set METRICS_ADDR to an address of this machine\.$/,
        );
      },
    );
  },
});

/**
 * A port where each connection is answered as by a server of another kind (`reply`, then the
 * end: an HTTP server given Postgres's startup message), or ended at once when `reply` is empty
 * (a database proxy whose database is away).
 */
function endsEveryConnection(reply: string): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      // As such a server does: it reads the client's first bytes, answers them, and closes.
      if (reply) {
        await conn.read(new Uint8Array(1024)).catch(() => null);
        await conn.write(new TextEncoder().encode(reply)).catch(() => {});
      }
      conn.close();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving;
    },
  };
}

// Found by an operator review (2026-12-05): DATABASE_URL on another server's port (NATS's 4222,
// an HTTP port) left a service, and `deno task start`, waiting without a word for good; a server
// that never answered took 30 s and was named by postgres.js's code only.
Deno.test({
  name:
    "[start] a DATABASE_URL at a server of another kind, a proxy ending every connection or a silent server ends with one line in seconds",
  sanitizeResources: false,
  async fn(t) {
    await using nats = await startNatsServer({ jetStream: true });
    await using http = endsEveryConnection("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    await using proxy = endsEveryConnection("");
    using silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const at = (port: number) => `postgres://postgres:pw-SECRET-1@127.0.0.1:${port}/open_event`;
    const common = { NATS_URL: nats.url, BUS_PREFIX: `fail_${crypto.randomUUID()}` };
    const closed =
      /: it closed the connection without answering\. Check the host and port in DATABASE_URL, and that the server behind it runs\.$/;
    const alone = async (port: number, cause: RegExp) => {
      const began = Date.now();
      const outcome = await run("services/audit/main.ts", { ...common, DATABASE_URL: at(port) });
      assertOneLine(
        outcome,
        new RegExp(`^audit: Cannot open the database at 127\\.0\\.0\\.1:${port}${cause.source}`),
      );
      assert.ok(Date.now() - began < 20_000, `in seconds, not ${Date.now() - began} ms`);
      assert.doesNotMatch(outcome.stderr, /SECRET/);
    };
    await t.step("a service alone, its database URL at an HTTP server", async () => {
      await alone(http.port, closed);
    });
    await t.step(
      "a service alone, its database URL at a proxy ending every connection",
      async () => {
        await alone(proxy.port, closed);
      },
    );
    await t.step("a service alone, its database URL at a server that never answers", async () => {
      await alone(
        (silent.addr as Deno.NetAddr).port,
        /: nothing there answered in time \(a server that is silent, or of another kind\)\. Check the host and port in DATABASE_URL\.$/,
      );
    });
    await t.step("start, its DATABASE_URL at an HTTP server", async () => {
      await startFails(
        { ...common, PORT: String(freePort()), DATABASE_URL: at(http.port) },
        closed,
      );
    });
  },
});

// Found by an operator review (2026-12-05): payments alone ended with a JSON log line naming no
// fix, where every other setting a process refuses is one plain line.
Deno.test("[start] payments alone with a malformed PAYMENTS_ENCRYPTION_KEY ends with one line", async () => {
  const outcome = await run("services/payments/main.ts", {
    PAYMENTS_ENCRYPTION_KEY: "c2hvcnQtU0VDUkVULWtleQ",
    DATABASE_URL: `postgres://postgres@127.0.0.1:${freePort()}/open_event`,
  });
  assertOneLine(
    outcome,
    /^payments: Cannot read PAYMENTS_ENCRYPTION_KEY: it holds 16 bytes, AES-256 needs 32\. Correct PAYMENTS_ENCRYPTION_KEY, or unset it for its default\.$/,
  );
  assert.doesNotMatch(outcome.stderr, /c2hvcnQtU0VDUkVULWtleQ/);
});

// Found by an operator review (2026-12-06): payments given another PAYMENTS_ENCRYPTION_KEY than
// the one its stored links were sealed with started, `/health` counted it, and only each change
// of a link that reached it answered 503.
Deno.test({
  name: "[start] payments alone with a key that does not open its stored keys ends with one line",
  ignore: !await answers("127.0.0.1", 5432),
  sanitizeResources: false,
  async fn() {
    await using nats = await startNatsServer({ jetStream: true });
    await using db = await testDatabase();
    const sealedWith = btoa("1".repeat(32));
    const sql = await openDatabase(db.url, { schema: PAYMENTS_SCHEMA, max: 1 });
    try {
      await migratePayments(sql);
      const box = await createSecretBox(sealedWith);
      await sql`insert into stripe_authorizations
        (event_id, stripe_publishable_key, access_token, stripe_user_id, account_lookup)
        values (1, 'pk_test_x', ${await box.seal("sk_x", "access_token:event:1")},
          ${await box.seal("acct_x", "stripe_user_id:event:1")}, ${await box.digest("acct_x")})`;
    } finally {
      await sql.end();
    }
    const env = {
      DATABASE_URL: db.url,
      NATS_URL: nats.url,
      BUS_PREFIX: `key_${crypto.randomUUID().slice(0, 8)}`,
      LOG_LEVEL: "error",
    };
    const other = await run("services/payments/main.ts", {
      ...env,
      PAYMENTS_ENCRYPTION_KEY: btoa("2".repeat(32)),
    });
    assertOneLine(
      other,
      /^payments: Cannot start payments: PAYMENTS_ENCRYPTION_KEY does not open the Stripe keys stored in the database .*Set the key they were sealed with\.$/,
    );
    // The key they were sealed with starts it.
    await using payments = spawnProcess("payments", "services/payments/main.ts", {
      ...env,
      PAYMENTS_ENCRYPTION_KEY: sealedWith,
      LOG_LEVEL: "info",
    });
    await payments.waitForLine("payments ready", 60_000);
  },
});

// Found by an operator review (2026-12-06): a service alone on a NATS without JetStream said
// "Cannot start audit: jetstream is not enabled", naming neither the server nor NATS_URL.
Deno.test({
  name: "[start] a service alone on a NATS without JetStream names NATS_URL",
  ignore: !await answers("127.0.0.1", 5432),
  sanitizeResources: false,
  async fn() {
    await using plain = await startNatsServer();
    await using db = await testDatabase();
    const outcome = await run("services/audit/main.ts", {
      DATABASE_URL: db.url,
      NATS_URL: plain.url,
    });
    assertOneLine(
      outcome,
      /^audit: Cannot connect to NATS at 127\.0\.0\.1:\d+: JetStream is not enabled there\. Start nats-server with -js, or set NATS_URL to one that has JetStream\.$/,
    );
  },
});

// Found by an operator review (2026-12-06): a HOST with a space after it (an env file's) ended
// with Deno.listen's stack trace ("invalid host '0.0.0.0 '"), naming no setting.
Deno.test({
  name: "[start] the gateway alone with a HOST that is no host name names HOST",
  sanitizeResources: false,
  async fn() {
    await using nats = await startNatsServer();
    const outcome = await run("gateway/main.ts", {
      HOST: "0.0.0.0 ",
      PORT: String(freePort()),
      NATS_URL: nats.url,
      JWT_SECRET: "set",
    });
    assertOneLine(
      outcome,
      /^gateway: Cannot read HOST: "0\.0\.0\.0 " is not a host name or address\. Correct HOST, or unset it for its default\.$/,
    );
  },
});

Deno.test({
  name: "[start] the services and the gateway stop when start is killed (SIGKILL)",
  ignore: Deno.build.os !== "linux" || !await answers("127.0.0.1", 5432),
  sanitizeResources: false,
  async fn() {
    // Servers it did not start: before, only the embedded ones watched start; the services and
    // the gateway served on as orphans, next to the next start's (and with an older JWT secret).
    await using nats = await startNatsServer({ jetStream: true });
    await using db = await testDatabase();
    const gateway = freePort();
    const start = await startUntilReady({
      DATABASE_URL: db.url,
      NATS_URL: nats.url,
      PORT: String(gateway),
      BUS_PREFIX: `orphans_${crypto.randomUUID().slice(0, 8)}`,
      JWT_SECRET: crypto.randomUUID(),
    });
    const children = await childrenOf(start.pid);
    try {
      assert.equal(children.length, 5, "four services and the gateway");
      await start.kill("SIGKILL");
      assert.deepEqual(await survivors(children, 10_000), [], "every child stopped within 10 s");
      assert.equal(await answers("127.0.0.1", gateway), false, "the gateway no longer listens");
    } finally {
      for (const pid of await survivors(children, 0)) killTree(pid);
    }
  },
});

/** The pid of the child of `pid` that runs `script`. */
async function childRunning(pid: number, script: string): Promise<number | undefined> {
  for (const child of await childrenOf(pid)) {
    const cmdline = await Deno.readTextFile(`/proc/${child}/cmdline`).catch(() => "");
    if (cmdline.split("\0").includes(script)) return child;
  }
  return undefined;
}

Deno.test({
  name: "[start] a service killed after start-up answers 503 at once, then is restarted",
  ignore: Deno.build.os !== "linux" || !await answers("127.0.0.1", 5432),
  sanitizeResources: false,
  async fn() {
    // Before, one lost process stopped the whole system ("exited unexpectedly; stopping").
    await using nats = await startNatsServer({ jetStream: true });
    await using db = await testDatabase();
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const start = await startUntilReady({
      DATABASE_URL: db.url,
      NATS_URL: nats.url,
      PORT: String(port),
      BUS_PREFIX: `restart_${crypto.randomUUID().slice(0, 8)}`,
      JWT_SECRET: crypto.randomUUID(),
    });
    try {
      const calculate = () => api(url, "POST", "/v1/orders/calculate-amount", undefined, {});
      assert.notEqual((await calculate()).status, 503, "discounts answers before the kill");
      const discounts = await childRunning(start.pid, "services/discounts/main.ts");
      assert.ok(discounts, "start runs discounts");
      Deno.kill(discounts, "SIGKILL");
      assert.deepEqual(await survivors([discounts], 5_000), [], "discounts is gone");
      // Until NATS has seen its connection close, a request may still go to it (a 504).
      await eventually(
        async () => (await api(url, "GET", "/health")).body?.missing?.includes("discounts"),
        5_000,
        "/health to miss discounts",
        50,
      );
      const began = Date.now();
      assert.equal((await calculate()).status, 503, "no instance: 503");
      assert.ok(Date.now() - began < 1_000, "the 503 comes at once, not after a timeout");
      await eventually(
        async () => (await calculate()).status !== 503,
        30_000,
        "discounts to be restarted",
        200,
      );
      assert.equal((await api(url, "GET", "/health")).status, 200);
      const again = await childRunning(start.pid, "services/discounts/main.ts");
      assert.ok(again && again !== discounts, "a new discounts process");
      assert.match(start.stderr(), /discounts exited unexpectedly \(exit SIGKILL\); restarting/);
    } finally {
      assert.equal(await start.stop(), 0, "Ctrl-C still stops it all, exit code 0");
    }
  },
});

Deno.test({
  name: "[start] a process that dies during start-up still stops everything, exit code 1",
  ignore: Deno.build.os !== "linux" || !await answers("127.0.0.1", 5432),
  sanitizeResources: false,
  async fn() {
    // Restarting it would only fail again: only a process lost after start-up is restarted.
    await using nats = await startNatsServer({ jetStream: true });
    await using db = await testDatabase();
    using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const outcome = await run("scripts/start.ts", {
      DATABASE_URL: db.url,
      NATS_URL: nats.url,
      PORT: String(freePort()),
      // Only the gateway finds out, as it starts: its metrics port is taken.
      METRICS_ADDR: `127.0.0.1:${(busy.addr as Deno.NetAddr).port}`,
      BUS_PREFIX: `early_${crypto.randomUUID().slice(0, 8)}`,
      JWT_SECRET: crypto.randomUUID(),
    });
    assert.equal(outcome.code, 1, outcome.stdout + outcome.stderr);
    assert.match(outcome.stderr, /gateway exited during start-up/);
    assert.doesNotMatch(outcome.stderr, /restarting/);
  },
});

Deno.test({
  name: "[start] a HOST or METRICS_ADDR host that does not resolve ends with one line naming it",
  sanitizeResources: false,
  async fn(t) {
    // Deno.listen fails on such a name with a bare lookup error: it left a stack trace naming no
    // setting, in start and in the gateway alone (an operator review).
    const host = "no-such-host.invalid";
    await t.step("start", async () => {
      await startFails(
        { HOST: host, PORT: String(freePort()) },
        /Cannot read HOST: "no-such-host\.invalid".*Correct HOST/,
      );
    });
    await using nats = await startNatsServer({ jetStream: true });
    const common = {
      NATS_URL: nats.url,
      BUS_PREFIX: `host_${crypto.randomUUID().slice(0, 8)}`,
      JWT_SECRET: "set",
      PORT: String(freePort()),
    };
    await t.step("the gateway alone", async () => {
      const outcome = await run("gateway/main.ts", { ...common, HOST: host });
      assertOneLine(outcome, /^gateway: Cannot read HOST: "no-such-host\.invalid".*Correct HOST/);
    });
    await t.step("the gateway's METRICS_ADDR", async () => {
      const outcome = await run("gateway/main.ts", { ...common, METRICS_ADDR: `${host}:9464` });
      assertOneLine(outcome, /^gateway: Cannot read METRICS_ADDR: .*Correct METRICS_ADDR/);
    });
  },
});

Deno.test({
  name: "[start] one start at a time runs a nats-server on a data folder; a killed one blocks none",
  ignore: Deno.build.os !== "linux" || !await answers("127.0.0.1", 5432),
  sanitizeResources: false,
  async fn() {
    // nats-server has no lock on its JetStream store: two of them on one folder lost facts.
    await using dir = await tempDir();
    await using db = await testDatabase();
    const env = (port = freePort()) => ({
      DATABASE_URL: db.url,
      NATS_URL: "embedded",
      EMBEDDED_DATA_DIR: dir.path,
      EMBEDDED_NATS_PORT: String(freePort()),
      PORT: String(port),
      BUS_PREFIX: "lock",
      JWT_SECRET: crypto.randomUUID(),
    });
    const first = await startUntilReady(env());
    const children = await childrenOf(first.pid);
    const refused = await startFails(
      env(),
      new RegExp(`another start uses ${dir.path} \\(pid ${first.pid}\\)`),
    ).catch((error) => error);
    await first.kill("SIGKILL");
    const left = await survivors(children, 10_000);
    left.forEach(killTree);
    if (refused instanceof Error) throw refused;
    assert.deepEqual(left, [], "the first start's children (its nats-server too) stopped");
    const port = freePort();
    const next = await startUntilReady(env(port));
    assert.equal((await api(`http://127.0.0.1:${port}`, "GET", "/health")).status, 200);
    assert.equal(await next.stop(), 0);
  },
});

Deno.test({
  name: "[start] a service stops cleanly at the end of its stdin only when start launched it",
  ignore: !await answers("127.0.0.1", 5432),
  sanitizeResources: false,
  async fn(t) {
    await using nats = await startNatsServer({ jetStream: true });
    await using db = await testDatabase();
    const env = { DATABASE_URL: db.url, NATS_URL: nats.url, BUS_PREFIX: "stdin" };
    const audit = async (extra: Record<string, string>) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-prompt", "services/audit/main.ts"],
        cwd: root,
        env: baseEnv({ ...env, LOG_LEVEL: "info", ...extra }),
        clearEnv: true,
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      for (let seen = ""; !seen.includes("audit ready");) {
        const next = await reader.read();
        if (next.done) throw new Error(`audit ended early:\n${seen}`);
        seen += next.value;
      }
      return { child, reader, exited: withTimeout(child.status, 10_000) };
    };

    await t.step(
      "launched by start: it drains and exits 0, with nobody reading stderr",
      async () => {
        const { child, reader, exited } = await audit({ [STOP_AT_STDIN_END]: "1" });
        // As when start is SIGKILLed: both ends of its pipes are gone; writing its last log lines
        // must not end the shutdown with a BrokenPipe.
        await reader.cancel();
        await child.stdin.close();
        const status = await exited;
        if (!status) child.kill("SIGKILL");
        assert.equal(status?.code, 0, "exit code 0 within 10 s");
      },
    );
    await t.step("run by hand: the end of its stdin changes nothing", async () => {
      const { child, reader } = await audit({});
      await child.stdin.close();
      assert.equal(await withTimeout(child.status, 2_000), undefined, "still running");
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0);
      await reader.cancel();
    });
  },
});

/** `promise`'s value, or undefined when it takes longer than `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) =>
    timer = setTimeout(() => resolve(undefined), ms)
  );
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
