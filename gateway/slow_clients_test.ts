import assert from "node:assert/strict";
import { route } from "@shared/bus_endpoints.ts";
import { catalog } from "@shared/subjects.ts";
import { eventually } from "@testing/eventually.ts";
import { JSONAPI, testGateway, token } from "./_test_utils.ts";
import { Clock, serveGuarded, Sweeper } from "./slow_clients.ts";

const encoder = new TextEncoder();
const LIMIT_MS = 1_000;

/**
 * Sends `head` at once, then `slow` one byte every 200 ms; returns how long until the server
 * answered and until it closed the connection, and what it answered (if anything).
 */
async function trickle(port: number, head: string, slow: string) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = Date.now();
  let answeredMs: number | undefined;
  const answer = (async () => {
    const chunks: string[] = [];
    const buffer = new Uint8Array(4096);
    const decoder = new TextDecoder();
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return chunks.join("");
      answeredMs ??= Date.now() - started;
      chunks.push(decoder.decode(buffer.subarray(0, n)));
    }
  })();
  let closed = false;
  answer.then(() => closed = true);
  if (head) await conn.write(encoder.encode(head));
  for (const char of slow) {
    if (closed) break;
    await conn.write(encoder.encode(char)).catch(() => closed = true);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const text = await answer;
  const tookMs = Date.now() - started;
  try {
    conn.close();
  } catch {
    // The server closed it.
  }
  return { tookMs, answeredMs, text };
}

Deno.test("[gateway] slow clients are cut off: headers and bodies have a time limit", async (t) => {
  await using gw = await testGateway({ env: { BODY_TIMEOUT_MS: String(LIMIT_MS) } });
  let reached = 0;
  await gw.serve("catalog", [
    route(catalog.eventTopics.create, () => {
      reached++;
      return { status: 201, body: {} };
    }),
  ]);
  const server = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: LIMIT_MS },
    gw.app.fetch,
  );
  try {
    const auth = `JWT ${await token("1")}`;
    await t.step("headers at a byte every 200 ms: closed after the limit", async () => {
      const { tookMs, text } = await trickle(
        server.port,
        "",
        `POST /v1/event-topics HTTP/1.1\r\nHost: x\r\nX-Slow: ${"a".repeat(40)}\r\n\r\n`,
      );
      assert.equal(text, "");
      assert.ok(tookMs >= LIMIT_MS && tookMs < LIMIT_MS + 800, `cut off after ${tookMs} ms`);
    });
    await t.step("a body at a byte every 200 ms: 408 after the limit", async () => {
      const head = `POST /v1/event-topics HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n` +
        `Content-Type: ${JSONAPI}\r\nContent-Length: 40\r\n\r\n`;
      const { tookMs, answeredMs, text } = await trickle(server.port, head, "x".repeat(40));
      assert.match(text, /^HTTP\/1\.1 408/);
      assert.match(text, /request_timeout/);
      assert.ok(
        answeredMs! >= LIMIT_MS && answeredMs! < LIMIT_MS + 800,
        `408 after ${answeredMs} ms`,
      );
      // The server keeps reading the unread body; the header clock then closes the connection.
      assert.ok(tookMs < 2 * LIMIT_MS + 800, `closed after ${tookMs} ms`);
    });
    await t.step("a normal client reuses its connection for several requests", async () => {
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`http://127.0.0.1:${server.port}/v1/event-topics`, {
          method: "POST",
          headers: { "Content-Type": JSONAPI, Authorization: auth },
          body: JSON.stringify({ data: { type: "event-topic", attributes: { name: "T" } } }),
        });
        assert.equal(response.status, 201);
        await response.body?.cancel();
      }
    });
    assert.equal(reached, 3, "only the normal requests reached the service");
  } finally {
    await server.shutdown();
  }
});

Deno.test("[gateway] a port in use fails the start and leaves no socket directory behind", async () => {
  // In a process of its own, whose temporary directory is this test's: other tests' gateways
  // make and remove theirs in the shared one meanwhile.
  const tmp = await Deno.makeTempDir({ prefix: "slow-clients-test-" });
  try {
    using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (busy.addr as Deno.NetAddr).port;
    const module = new URL("./slow_clients.ts", import.meta.url).href;
    const script = `import { serveGuarded } from "${module}";
      await serveGuarded({ hostname: "127.0.0.1", port: ${port}, headerTimeoutMs: 1000 },
        () => new Response("never"));`;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      env: { TMPDIR: tmp },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(output.success, false, "the start failed");
    assert.match(new TextDecoder().decode(output.stderr), /AddrInUse|in use/);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), [], "nothing left behind");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("[gateway] clients that reset before they are accepted do not stop it accepting", async () => {
  const server = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: LIMIT_MS },
    () => new Response("ok"),
  );
  try {
    const resets = `import net from "node:net";
      for (let i = 0; i < 5; i++) await new Promise((resolve) => {
        const socket = net.connect(${server.port}, "127.0.0.1", () => {
          socket.resetAndDestroy();
          resolve();
        });
        socket.on("error", resolve);
      });`;
    // outputSync holds this event loop until the child is done: its connections are reset while
    // they wait in the backlog, so each accept fails.
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", resets] }).outputSync();
    assert.ok(child.success, new TextDecoder().decode(child.stderr));
    const response = await fetch(`http://127.0.0.1:${server.port}/`, {
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(await response.text(), "ok");
  } finally {
    await server.shutdown();
  }
});

Deno.test("[gateway] bytes that end a head in a body do not keep a connection open for good", async () => {
  const server = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: LIMIT_MS, answerWithinMs: 2 * LIMIT_MS },
    () => new Response("early"), // answers without reading the body
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n";
    await conn.write(encoder.encode(head));
    const buffer = new Uint8Array(4096);
    assert.ok((await conn.read(buffer))! > 0, "answered");
    // Body bytes that look like the end of a head, then silence.
    await conn.write(encoder.encode("\r\n\r\n"));
    const started = Date.now();
    const closed = (async () => {
      while ((await conn.read(buffer).catch(() => null)) !== null) {
        // Whatever else comes: only the close counts.
      }
    })();
    const limit = new Promise<"open">((resolve) => setTimeout(() => resolve("open"), 6 * LIMIT_MS));
    assert.equal(await Promise.race([closed.then(() => "closed"), limit]), "closed");
    assert.ok(Date.now() - started < 2 * LIMIT_MS * 1.25 + 500, "within the answer's time");
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the server.
    }
    await server.shutdown();
  }
});

/** Reads from `conn` until `text` holds `done(text)`, or the connection closes; the text read. */
async function readUntil(conn: Deno.Conn, done: (text: string) => boolean): Promise<string> {
  const buffer = new Uint8Array(4096);
  const decoder = new TextDecoder();
  let text = "";
  while (!done(text)) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n));
  }
  return text;
}

/** A handler that reads the whole body and answers how many bytes it read. */
async function readAll(request: Request): Promise<Response> {
  return new Response(`read ${(await request.arrayBuffer()).byteLength}`);
}

/** Runs `use` on a connection to a guarded `handler` (header limit 1 s, answers within 6 s). */
async function onGuarded(
  handler: Deno.ServeHandler<Deno.UnixAddr>,
  use: (conn: Deno.Conn) => Promise<void>,
): Promise<void> {
  const server = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: LIMIT_MS, answerWithinMs: 6 * LIMIT_MS },
    handler,
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await use(conn);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the server.
    }
    await server.shutdown();
  }
}

Deno.test("[gateway] a body sent after 100 Continue has the answer's time, not the header's", async () => {
  await onGuarded(readAll, async (conn) => {
    const head = "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 12\r\n\r\n";
    await conn.write(encoder.encode(head));
    const interim = await readUntil(conn, (text) => text.includes("\r\n\r\n"));
    assert.match(interim, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    // Twelve bytes over 2.4 s: longer than the header timeout (cut off at most 1.25 s after the
    // interim answer before), well within the answer's.
    for (let i = 0; i < 12; i++) {
      await conn.write(encoder.encode("x"));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const answer = await readUntil(conn, (text) => text.endsWith("read 12"));
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nread 12$/);
  });
});

Deno.test("[gateway] a pipelined request has its answer's time after the first answer", async () => {
  const fastThenSlow = async (request: Request) => {
    const slow = new URL(request.url).pathname === "/slow";
    // Past the header timeout (and the sweep's quarter) after the first answer went out.
    if (slow) await new Promise((resolve) => setTimeout(resolve, 2 * LIMIT_MS));
    return new Response(slow ? "slow done" : "fast done");
  };
  await onGuarded(fastThenSlow, async (conn) => {
    const both = "GET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    await conn.write(encoder.encode(both));
    const answers = await readUntil(conn, (text) => text.includes("slow done"));
    assert.match(answers, /fast done[^]*HTTP\/1\.1 200 OK[^]*slow done$/);
  });
});

Deno.test("[gateway] CRLFCRLF in a body does not keep the connection on the answer's time", async () => {
  await onGuarded(readAll, async (conn) => {
    // A body holding what looks like the end of a head, then one plain request, then silence.
    const post = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\na\r\n\r\nb";
    await conn.write(encoder.encode(post));
    await readUntil(conn, (text) => text.endsWith("read 6"));
    await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await readUntil(conn, (text) => text.endsWith("read 0"));
    const idleFrom = Date.now();
    assert.equal(await readUntil(conn, () => false), "", "closed without a word");
    const idleMs = Date.now() - idleFrom;
    // The header timeout (checked every quarter of it), not the answer's six times as much.
    assert.ok(idleMs < 1.25 * LIMIT_MS + 500, `closed after ${idleMs} ms idle`);
  });
});

Deno.test("[gateway] a client that leaves while the relay waits for its own answer is let go at once", async () => {
  // A fault experiment (2026-12-02): 3,000 signed-in GETs sent and their sockets closed at once,
  // with the catalog stalled, held 7,470 descriptors until each service answer or its 504 (the
  // full path lets the client's socket and the relay's go as soon as the client leaves: ~1 each).
  const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  let asked = 0;
  let bytesRead = 0;
  const ok = encoder.encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  const server = await serveGuarded({
    hostname: "127.0.0.1",
    port: 0,
    headerTimeoutMs: 10_000,
    answer: (head) => {
      if (!head.plain) return undefined;
      asked++;
      return released.then(() => [ok]);
    },
    onClientRead: (bytes) => bytesRead += bytes,
  }, () => new Response("full path"));
  try {
    const before = fds();
    const head = encoder.encode("GET /v1/events/7 HTTP/1.1\r\nHost: a\r\n\r\n");
    for (let i = 0; i < 20; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(head);
      conn.close();
    }
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && (asked < 20 || fds() > before + 3)) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.equal(asked, 20);
    assert.ok(fds() <= before + 3, `${fds() - before} descriptors still held for 20 clients gone`);
    // A client still there gets its answer, and a request it sends meanwhile comes after it.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(head);
    // Its answer owed before the next request is sent: a fixed 50 ms pause let a slow relay read
    // both heads at once, which it never answers itself.
    await eventually(() => asked === 21, 5_000, "the relay taking the read", 5);
    const meanwhile = encoder.encode("GET /other HTTP/1.1\r\nHost: a\r\nCookie: c=1\r\n\r\n");
    const read = bytesRead;
    await conn.write(meanwhile);
    // Read while the answer is owed (a fixed 50 ms pause could release the answer first).
    await eventually(() => bytesRead === read + meanwhile.length, 5_000, "the read meanwhile", 5);
    release();
    const text = await readUntil(conn, (text) => text.endsWith("full path"));
    conn.close();
    assert.match(
      text,
      /^HTTP\/1\.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP\/1\.1 200 OK[^]*full path$/,
    );
  } finally {
    release();
    await server.shutdown();
  }
});

Deno.test("[gateway] an idle keep-alive connection holds no large buffer", async () => {
  // A fault experiment (2026-12-02): 2,000 signed-in keep-alive connections left idle took the
  // gateway process from 72 to 233 MiB RSS, 80 KiB a connection in the relay's two read buffers
  // (16 KiB for the client's bytes, 64 KiB for the answers), each held by a pending read. Counted
  // here as V8's external memory (array buffers), which RSS follows once freed memory is reused.
  const server = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 30_000 },
    () => new Response("ok"),
  );
  const head = encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const buffer = new Uint8Array(1024);
  const conns: Deno.Conn[] = [];
  try {
    const before = Deno.memoryUsage().external;
    for (let i = 0; i < 200; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      conns.push(conn);
      await conn.write(head);
      await conn.read(buffer);
    }
    const perConnection = (Deno.memoryUsage().external - before) / 200 / 1024;
    assert.ok(perConnection < 40, `${perConnection.toFixed(0)} KiB of buffers an idle connection`);
  } finally {
    for (const conn of conns) conn.close();
    await server.shutdown();
  }
});

/** Reads `conn` to its end `chunk` bytes at a time, pausing `pauseMs` between reads; the bytes read. */
async function readSlowly(conn: Deno.Conn, chunk: number, pauseMs: number): Promise<number> {
  const buffer = new Uint8Array(chunk);
  let total = 0;
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return total;
    total += n;
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

// Found by a review: an answer `Deno.serve` writes gets more time with each chunk the relay passes
// on, one the relay writes itself (a cache hit, a signed-in read) had only the answer's time, so
// a large page to a client slow to read it was cut off on the short way alone.
Deno.test("[gateway] an answer the relay writes itself goes on while a slow client keeps reading", async () => {
  const page = 24 * 1024 * 1024;
  const head = `HTTP/1.1 200 OK\r\ncontent-length: ${page}\r\nconnection: close\r\n\r\n`;
  const answer = [encoder.encode(head), new Uint8Array(page)];
  const server = await serveGuarded({
    hostname: "127.0.0.1",
    port: 0,
    headerTimeoutMs: 1_000,
    answerWithinMs: 1_500,
    answer: (raw) => raw.plain ? answer : undefined,
  }, () => new Response("full path"));
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(encoder.encode("GET /v1/events HTTP/1.1\r\nHost: a\r\n\r\n"));
    const started = Date.now();
    // ~4 MB/s: the page takes ~6 s, far past the answer's time. The kernel lets the relay write
    // again once a third of its send buffer (up to 4 MiB on loopback) is free: every ~0.3 s here.
    const read = await readSlowly(conn, 128 * 1024, 30);
    const tookMs = Date.now() - started;
    conn.close();
    assert.equal(read, answer[0].length + page, `cut off after ${tookMs} ms`);
    assert.ok(tookMs > 3_000, `read in ${tookMs} ms: not slow enough to need the extension`);
  } finally {
    await server.shutdown();
  }
});

// Found by a review: moved on every write, the clock let a client that takes a few kilobytes per
// header timeout (a small send buffer: each write takes what it freed) hold a large page for many
// minutes, where the long way, moving it once per chunk of up to 64 KiB, cut it off. Loopback's
// send buffer makes every write large, so the clock is checked here on its own.
Deno.test("[gateway] an answer the relay writes itself earns more time per 64 KiB, not per write", () => {
  const sweeper = new Sweeper(1_000, 60_000);
  try {
    const clock = new Clock(sweeper, []);
    clock.headsIn(1);
    clock.deadline = 0; // the answer's time is up: only progress may move it
    for (let i = 0; i < 15; i++) clock.progressed(4 * 1024);
    assert.equal(clock.deadline, 0, "60 KiB in small writes earn nothing yet");
    clock.progressed(4 * 1024);
    assert.ok(clock.deadline > Date.now(), "64 KiB earn the header timeout again");
  } finally {
    sweeper.stop();
  }
});

/** HTTP/2 frames: SETTINGS, its ACK, a PING (RFC 9113 §6.5, §6.7). */
const H2_FRAMES = {
  preface: encoder.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  settings: new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0, 0]),
  ack: new Uint8Array([0, 0, 0, 4, 1, 0, 0, 0, 0]),
  ping: new Uint8Array([0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
};

/** A guarded server that counts the client bytes its relay has read. */
async function countingReads(handler: Deno.ServeHandler<Deno.UnixAddr>) {
  const counted = { bytesRead: 0 };
  const server = await serveGuarded({
    hostname: "127.0.0.1",
    port: 0,
    headerTimeoutMs: LIMIT_MS,
    onClientRead: (bytes) => counted.bytesRead += bytes,
  }, handler);
  return Object.assign(counted, server);
}

/**
 * Waits until `server`'s relay has read `bytes` more than `from` (the bytes sent since), or the
 * connection is `closed`.
 */
async function readBy(
  server: { bytesRead: number },
  from: number,
  bytes: number,
  closed = () => false,
): Promise<void> {
  const read = () => server.bytesRead === from + bytes || closed();
  await eventually(read, 5_000, `${bytes} bytes read`, 5);
}

/**
 * Sends the HTTP/2 preface (in `split` pieces, each read by the relay before the next is sent)
 * and pings; how long until the server closed.
 */
async function pingH2(
  server: { port: number; bytesRead: number },
  split: number,
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const started = Date.now();
  let closed = false;
  const reading = readUntil(conn, () => false).then(() => closed = true);
  const step = Math.ceil(H2_FRAMES.preface.length / split);
  const send = (bytes: Uint8Array) => conn.write(bytes).catch(() => closed = true);
  for (let at = 0; at < H2_FRAMES.preface.length; at += step) {
    const piece = H2_FRAMES.preface.subarray(at, at + step);
    const read = server.bytesRead;
    await send(piece);
    // A read of its own (a fixed 20 ms pause let a slow relay read several pieces at once).
    await readBy(server, read, piece.length, () => closed);
  }
  await send(H2_FRAMES.settings);
  await send(H2_FRAMES.ack);
  while (!closed && Date.now() - started < 4 * LIMIT_MS) {
    await send(H2_FRAMES.ping);
    await new Promise((resolve) => setTimeout(resolve, LIMIT_MS / 4));
  }
  const tookMs = Date.now() - started;
  conn.close();
  await reading;
  return tookMs;
}

Deno.test("[gateway] an HTTP/2 connection cannot hold the relay past the header timeout", async (t) => {
  // Deno.serve speaks h2c to a client that opens with HTTP/2's preface, and the relay's clock
  // reads HTTP/1.1 heads: every PING's answer gave such a connection the header timeout again, so
  // one that never sent a request stayed open for good (a review, 2026-12-03).
  const server = await countingReads(() => new Response("ok"));
  try {
    for (const split of [1, 24]) {
      await t.step(`the preface in ${split} write(s): closed at once`, async () => {
        const tookMs = await pingH2(server, split);
        assert.ok(tookMs < LIMIT_MS, `closed after ${tookMs} ms`);
      });
    }
    await t.step("an HTTP/1.1 request that starts with P is still answered", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      const read = server.bytesRead;
      await conn.write(encoder.encode("P"));
      await readBy(server, read, 1); // "P" read alone, as the preface's first byte would be
      await conn.write(encoder.encode("UT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"));
      const text = await readUntil(conn, (text) => text.endsWith("ok"));
      conn.close();
      assert.match(text, /^HTTP\/1\.1 200 OK/);
    });
  } finally {
    await server.shutdown();
  }
});

/** Sends `text` on a fresh connection (all of it, or what the server reads before it closes). */
async function sendAll(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = encoder.encode(text);
  const writing = (async () => {
    for (let written = 0; written < bytes.length;) {
      written += await conn.write(bytes.subarray(written));
    }
  })().catch(() => {}); // the server may close before it read everything
  const chunks: string[] = [];
  const buffer = new Uint8Array(65_536);
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    chunks.push(new TextDecoder().decode(buffer.subarray(0, n)));
  }
  await writing;
  conn.close();
  return chunks.join("");
}

Deno.test("[gateway] a head Deno.serve cannot read is a JSON:API error, never a bare 400 or nothing", async (t) => {
  await using gw = await testGateway();
  const server = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 5_000 },
    gw.app.fetch,
  );
  try {
    const cases: [string, string, number][] = [
      ["a 70 kB URL", `GET /v1/events?sort=${"a".repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
      [
        "a 1 MB URL",
        `GET /v1/events?sort=${"a".repeat(1_000_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        414,
      ],
      [
        "a 100 kB header",
        `GET /v1/events HTTP/1.1\r\nHost: x\r\nX-A: ${"a".repeat(100_000)}\r\n\r\n`,
        431,
      ],
      ["two Host headers", "GET /v1/events HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
      [
        "200 header fields",
        `GET /v1/events HTTP/1.1\r\nHost: x\r\n${"X-A: a\r\n".repeat(200)}\r\n`,
        431,
      ],
    ];
    for (const [what, text, status] of cases) {
      await t.step(what, async () => {
        const answer = await sendAll(server.port, text);
        const [head, body] = answer.split("\r\n\r\n");
        assert.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), what);
        assert.match(head, /\r\nContent-Type: application\/vnd\.api\+json\r\n/);
        assert.match(head, /\r\nAccess-Control-Allow-Origin: \*\r\n/);
        assert.match(head, /\r\nX-Request-Id: [0-9a-f-]{36}\r\n/);
        assert.match(head, /\r\nConnection: close\r\n/);
        const document = JSON.parse(body);
        assert.equal(document.errors[0].status, String(status));
        assert.equal(document.jsonapi.version, "1.0");
      });
    }
    await t.step("pipelined after a request it read: that answer, then the error", async () => {
      const answer = await sendAll(
        server.port,
        "GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/events HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      );
      assert.match(answer, /^HTTP\/1\.1 404 [^]*"status":"404"[^]*\r\n\r\n\{"errors/);
      const second = answer.slice(answer.indexOf("HTTP/1.1 400 "));
      assert.match(second, /^HTTP\/1\.1 400 [^]*\r\nContent-Type: application\/vnd\.api\+json\r\n/);
      assert.equal(JSON.parse(second.split("\r\n\r\n")[1]).errors[0].status, "400");
    });
    await t.step("the next connection is served as before", async () => {
      const answer = await sendAll(
        server.port,
        `GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 404 /);
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("[gateway] a head refused behind a pipelined request is told by its own bytes", async (t) => {
  await using gw = await testGateway();
  const server = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 5_000 },
    gw.app.fetch,
  );
  try {
    const first = "GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n";
    const cases: [string, string, number][] = [
      ["a 70 kB URL", `GET /v1/events?sort=${"a".repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
      [
        "200 header fields",
        `GET /v1/events HTTP/1.1\r\nHost: x\r\n${"X-A: a\r\n".repeat(200)}\r\n`,
        431,
      ],
    ];
    for (const [what, text, status] of cases) {
      await t.step(what, async () => {
        const answer = await sendAll(server.port, first + text);
        assert.match(answer, /^HTTP\/1\.1 404 /);
        const second = answer.slice(answer.indexOf("HTTP/1.1", 1));
        assert.match(second.slice(0, 40), new RegExp(`^HTTP/1\\.1 ${status} `), what);
      });
    }
  } finally {
    await server.shutdown();
  }
});

// A review: `GET *` (the target `*` is for OPTIONS only, RFC 9112 §3.2.4) was refused with the
// detail of a malformed head ("two Host fields, ..."), and a refused HEAD got the error's body,
// which no answer to a HEAD may carry (RFC 9110 §9.3.2).
Deno.test("[gateway] a refused head says why a target * is refused, and a HEAD's has no body", async (t) => {
  await using gw = await testGateway();
  const server = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 5_000 },
    gw.app.fetch,
  );
  const split = (answer: string) => {
    const end = answer.indexOf("\r\n\r\n") + 4;
    return { head: answer.slice(0, end), body: answer.slice(end) };
  };
  try {
    for (const method of ["GET", "POST", "DELETE", "PATCH"]) {
      await t.step(`${method} *`, async () => {
        const { head, body } = split(
          await sendAll(server.port, `${method} * HTTP/1.1\r\nHost: x\r\n\r\n`),
        );
        assert.match(head, /^HTTP\/1\.1 400 /);
        assert.match(JSON.parse(body).errors[0].detail, /target `\*` is for OPTIONS only/);
      });
    }
    const cases: [string, string, string][] = [
      ["*", "*", ""],
      ["a 70 kB target", `/v1/events?sort=${"a".repeat(70_000)}`, ""],
      ["200 header fields", "/v1/events", "X-A: a\r\n".repeat(200)],
    ];
    for (const [what, target, fields] of cases) {
      await t.step(`HEAD with ${what}: the GET's head alone`, async () => {
        const rest = `HTTP/1.1\r\nHost: x\r\n${fields}\r\n`;
        const get = split(await sendAll(server.port, `GET ${target} ${rest}`));
        const head = split(await sendAll(server.port, `HEAD ${target} ${rest}`));
        assert.equal(head.body, "", "no body");
        assert.equal(head.head.slice(0, 12), get.head.slice(0, 12), "the GET's status");
        const length = (text: string) => /\r\ncontent-length: (\d+)\r\n/i.exec(text)?.[1];
        assert.equal(length(head.head), String(new TextEncoder().encode(get.body).length));
      });
    }
    await t.step(
      "HEAD with a 70 kB target behind a GET: that answer, then its head alone",
      async () => {
        const answer = await sendAll(
          server.port,
          "GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n" +
            `HEAD /v1/events?sort=${"a".repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        );
        assert.match(answer, /^HTTP\/1\.1 404 /);
        const second = answer.slice(answer.indexOf("HTTP/1.1", 1));
        assert.match(second, /^HTTP\/1\.1 414 /);
        assert.ok(second.endsWith("\r\n\r\n"), "no body");
      },
    );
  } finally {
    await server.shutdown();
  }
});
