import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { fileURLToPath } from "node:url";
import { DEFAULT_PORT, parseArgs } from "./handler.ts";
import type { Transaction } from "./hooks.ts";

// Dredd and the handler run from the repo root, as in CI.
const root = fileURLToPath(new URL("..", import.meta.url));

function transaction(name: string): Transaction {
  return {
    name,
    request: { method: "GET", uri: "/things", headers: {}, body: "" },
    expected: { statusCode: "200", headers: {}, body: "" },
    skip: false,
  };
}

/** Collects everything a connection sends, to read back "\n"-terminated lines. */
class LineReader {
  #buffer = "";
  #closed = false;
  #wake: () => void = () => {};
  readonly pump: Promise<void>;

  constructor(conn: Deno.Conn) {
    this.pump = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of conn.readable) {
        this.#buffer += decoder.decode(chunk, { stream: true });
        this.#wake();
      }
      this.#closed = true;
      this.#wake();
    })();
  }

  async next(): Promise<string | undefined> {
    while (!this.#buffer.includes("\n")) {
      if (this.#closed) return undefined;
      await new Promise<void>((wake) => this.#wake = wake);
    }
    const end = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, end);
    this.#buffer = this.#buffer.slice(end + 1);
    return line;
  }

  /** What arrived that is not yet a whole line. */
  get partial(): string {
    return this.#buffer;
  }
}

/** A transaction as protocol_hooks.ts leaves it: each hook appends its step to `order`. */
type Noted = Transaction & { order?: string[] };

interface Reply {
  uuid: string;
  event: string;
  data: Noted & Noted[];
}

async function startHandler(port: number, hookFile: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "hooks/handler.ts", "--port", String(port), hookFile],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  // Its first line, within 30 s: a handler that never prints fails the test, not hang it.
  const deadline = Date.now() + 30_000;
  while (!seen.includes("\n")) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`hooks/handler.ts printed no line within 30 s: ${seen}`)),
        Math.max(0, deadline - Date.now()),
      );
    });
    const next = await Promise.race([stdout.read(), timeout])
      .finally(() => clearTimeout(timer))
      .catch(async (error) => {
        child.kill("SIGKILL");
        await Promise.all([child.status, stdout.cancel(), child.stderr.cancel()]);
        throw error;
      });
    if (next.done) break;
    seen += next.value;
  }
  // Keep draining so a chatty handler never blocks on a full pipe.
  const rest = (async () => {
    while (!(await stdout.read()).done) { /* discard */ }
  })();
  const stderr = new Response(child.stderr).text();
  return { child, ready: seen.trim(), done: Promise.all([child.status, rest, stderr]) };
}

Deno.test("[hooks] parseArgs reads --port, DREDD_HOOKS_PORT and the hook files", () => {
  assert.deepEqual(parseArgs(["a.ts", "b.ts"], {}), {
    port: DEFAULT_PORT,
    files: ["a.ts", "b.ts"],
  });
  assert.deepEqual(parseArgs(["--port", "7000", "a.ts"], { DREDD_HOOKS_PORT: "7001" }), {
    port: 7000,
    files: ["a.ts"],
  });
  assert.deepEqual(parseArgs(["--port=7002"], {}), { port: 7002, files: [] });
  assert.deepEqual(parseArgs(["a.ts"], { DREDD_HOOKS_PORT: "7001" }), {
    port: 7001,
    files: ["a.ts"],
  });
  assert.throws(() => parseArgs(["--port", "x"], {}), /Cannot start the hooks handler/);
});

Deno.test("[hooks] handler answers Dredd's messages in order, however TCP chunks them", async () => {
  const port = freePort();
  const handler = await startHandler(port, "hooks/testdata/protocol_hooks.ts");
  assert.equal(handler.ready, `Deno hooks handler listening on 127.0.0.1:${port}`);

  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = new LineReader(conn);
  const encoder = new TextEncoder();
  const write = async (text: string | Uint8Array) => {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
  };
  const message = (uuid: string, event: string, data: unknown) =>
    JSON.stringify({ uuid, event, data }) + "\n";
  const nextReply = async (): Promise<Reply> => JSON.parse((await lines.next()) ?? "null");

  // Two messages in one chunk.
  const all = [transaction("A > B > C"), transaction("Other")];
  await write(message("u1", "beforeAll", all) + message("u2", "beforeEach", all[0]));
  const r1 = await nextReply();
  assert.equal(r1.uuid, "u1");
  assert.equal(r1.event, "beforeAll");
  assert.deepEqual(r1.data.map((t) => t.order), [["beforeAll"], ["beforeAll"]]);
  const r2 = await nextReply();
  assert.equal(r2.uuid, "u2");
  assert.equal(r2.event, "beforeEach");
  // beforeEach first, then the named hooks in registration order; the async one was awaited.
  assert.deepEqual(r2.data.order, ["beforeEach", "before", "before2"]);
  assert.equal(r2.data.request.headers["X-Added"], "yes");

  // One message split over two chunks, the cut inside a multi-byte character of the name.
  const accented = { ...r2.data, name: "Zoë > Thing" };
  const bytes = encoder.encode(message("u3", "beforeEachValidation", accented));
  const cut = encoder.encode(JSON.stringify({ uuid: "u3", event: "x", data: { name: "Zo" } }))
    .length;
  await write(bytes.subarray(0, cut + 1));
  await new Promise((done) => setTimeout(done, 50));
  await write(bytes.subarray(cut + 1));
  const r3 = await nextReply();
  assert.equal(r3.uuid, "u3");
  assert.equal(r3.data.name, "Zoë > Thing");
  // No named beforeValidation hook for this name: only the each-hook ran.
  assert.deepEqual(r3.data.order?.slice(-1), ["beforeEachValidation"]);

  // Dredd's own pattern: the JSON in one write, its "\n" in a later one. The handler answers the
  // whole object at once but owes its "\n" until Dredd's arrives.
  const named = { ...r2.data, order: [] };
  await write(message("u4", "beforeEachValidation", named).trimEnd());
  await new Promise((done) => setTimeout(done, 100));
  assert.match(lines.partial, /^\{"uuid":"u4".*\}$/, "the answer came before the newline");
  await write("\n");
  const r4 = await nextReply();
  assert.equal(r4.uuid, "u4");
  assert.deepEqual(r4.data.order, ["beforeEachValidation", "beforeValidation"]);

  // afterEach: named `after` hooks first, then afterEach.
  await write(message("u5", "afterEach", { ...named, real: { statusCode: 200 } }));
  const r5 = await nextReply();
  assert.deepEqual(r5.data.order, ["after", "afterEach"]);
  assert.deepEqual(r5.data.real, { statusCode: 200 });

  // A hook that throws fails the transaction, the other hooks still run, the handler lives on.
  await write(message("u6", "beforeEach", transaction("Broken")));
  const r6 = await nextReply();
  assert.equal(r6.data.fail, 'before "Broken" hook failed: Cannot prepare: broken on purpose');
  assert.deepEqual(r6.data.order, ["beforeEach", "ranAfterBroken"]);

  // An unknown event comes back unchanged.
  await write(message("u7", "somethingNew", { keep: 1 }));
  assert.deepEqual(await nextReply(), { uuid: "u7", event: "somethingNew", data: { keep: 1 } });

  // afterAll carries every transaction, megabytes of them (the too-large examples' bodies), in
  // many chunks: read as one message, answered once, bodies intact.
  const body = "x".repeat(4_000_000);
  const heavy = all.map((t) => ({ ...t, request: { body } }));
  const text = encoder.encode(message("u8", "afterAll", heavy));
  for (let at = 0; at < text.length; at += 65_536) await write(text.subarray(at, at + 65_536));
  const r8 = await nextReply();
  assert.equal(r8.event, "afterAll");
  assert.deepEqual(r8.data.map((t) => t.order?.at(-1)), ["afterAll", "afterAll"]);
  assert.deepEqual(r8.data.map((t) => (t.request as { body: string }).body.length), [4e6, 4e6]);

  // Dredd closing the connection ends the handler cleanly.
  conn.close();
  await lines.pump.catch(() => {});
  const [status, , stderr] = await handler.done;
  assert.equal(status.code, 0);
  assert.match(stderr, /Cannot prepare: broken on purpose/);
  assert.doesNotMatch(stderr, /\bat file:/, "no stack traces in the log");
});

Deno.test("[hooks] handler stops cleanly on SIGTERM and fails on a broken hook file", async () => {
  const port = freePort();
  const handler = await startHandler(port, "hooks/testdata/protocol_hooks.ts");
  handler.child.kill("SIGTERM");
  const [status] = await handler.done;
  assert.equal(status.code, 0);

  const broken = await startHandler(freePort(), "hooks/testdata/no_such_hooks.ts");
  const [brokenStatus, , stderr] = await broken.done;
  assert.equal(brokenStatus.code, 1);
  assert.match(stderr, /Cannot load hook file hooks\/testdata\/no_such_hooks\.ts/);
});

/** Answers 401 unless the request carries `Authorization: Bearer test`. */
function startApi(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    if (request.headers.get("authorization") !== "Bearer test") {
      return new Response(null, { status: 401 });
    }
    const path = new URL(request.url).pathname;
    return Response.json(path === "/things" ? { data: [] } : { id: "1" });
  });
}

async function dredd(apiPort: number, extra: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "npm:dredd@14.1.0",
      "hooks/testdata/api.apib",
      `http://127.0.0.1:${apiPort}`,
      "--color=false",
      ...extra,
    ],
    cwd: root,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    text: decoder.decode(output.stdout) + decoder.decode(output.stderr),
  };
}

function withHooks(): string[] {
  const port = freePort();
  return [
    "--language",
    `deno run -A hooks/handler.ts --port ${port}`,
    "--hookfiles=hooks/testdata/e2e_hooks.ts",
    "--hooks-worker-handler-port",
    String(port),
    // Dredd gives up after 1.5 s by default; a cold Deno cache can need longer to start.
    "--hooks-worker-connect-timeout",
    "10000",
  ];
}

Deno.test("[hooks] Dredd 14.1.0 runs the Deno handler end to end", async (t) => {
  await using api = startApi();
  const marker = await Deno.makeTempFile({ prefix: "hooks_marker_" });
  try {
    await t.step("passes when the hooks add the header", async () => {
      const run = await dredd(api.addr.port, withHooks(), { HOOKS_TEST_MARKER: marker });
      assert.equal(run.code, 0, run.text);
      assert.match(run.text, /2 passing, 0 failing/);
      assert.equal(await Deno.readTextFile(marker), "before Things > Thing > Get a thing\n");
    });

    await t.step("fails without the hooks", async () => {
      const run = await dredd(api.addr.port, []);
      assert.notEqual(run.code, 0, run.text);
      assert.match(run.text, /0 passing, 2 failing/);
    });

    await t.step("reports a hook that throws as a failed transaction", async () => {
      const run = await dredd(api.addr.port, withHooks(), { HOOKS_TEST_THROW: "1" });
      assert.notEqual(run.code, 0, run.text);
      assert.match(run.text, /1 passing, 1 failing/);
      assert.match(
        run.text,
        /Failed in before hook: before "Things > Thing > Get a thing" hook failed/,
      );
    });
  } finally {
    await Deno.remove(marker);
  }
});
