/**
 * The gateway at its open-file limit (`ulimit -n`): each client connection holds three
 * descriptors behind the slow-client relay (README, "Known limits"), so enough idle connections
 * reach the limit. A resource review (2026-12-06): `Deno.serve`'s accept on the relay's Unix
 * socket then failed with EMFILE, an uncaught `Http: Error: Too many open files`, and the gateway
 * exited (code 1), every connection with it; in 2 of the 3 positions of the limit tried here.
 */
import assert from "node:assert/strict";
import { freePort } from "@shared/net.ts";
import { testBackends } from "@shared/testing.ts";
import { spawnProcess } from "@testing/processes.ts";

const encoder = new TextEncoder();

/** The status line a new connection's GET of `path` gets, or why it got none. */
async function statusLine(port: number, path: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      encoder.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    const buffer = new Uint8Array(4096);
    const n = await conn.read(buffer);
    return n === null ? "closed" : new TextDecoder().decode(buffer.subarray(0, n)).split("\r\n")[0];
  } catch (error) {
    return String(error);
  } finally {
    conn.close();
  }
}

function openFiles(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

Deno.test({
  name: "[gateway] idle connections up to the open-file limit leave the gateway running",
  ignore: Deno.build.os !== "linux",
  async fn(t) {
    const { natsUrl } = await testBackends();
    // Where the limit falls among a connection's three descriptors decides which accept fails.
    for (const room of [60, 61, 62]) {
      await t.step(`limit ${room} descriptors above those open at start`, async () => {
        const port = freePort();
        await using gateway = spawnProcess("gateway", "gateway/main.ts", {
          NATS_URL: natsUrl,
          BUS_PREFIX: `files${crypto.randomUUID().slice(0, 8)}`,
          JWT_SECRET: crypto.randomUUID(),
          PORT: String(port),
          LOG_LEVEL: "info",
        });
        await gateway.waitForLine("gateway listening", 30_000);
        const limit = openFiles(gateway.pid) + room;
        const prlimit = await new Deno.Command("prlimit", {
          args: [`--pid=${gateway.pid}`, `--nofile=${limit}:${limit}`],
        }).output();
        assert.ok(prlimit.success, "prlimit (util-linux) sets the gateway's limit");
        // The gateway reads its limit again at most once a second (gateway/open_files.ts).
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        let exited = false;
        gateway.exited.then(() => exited = true);
        const idle: Deno.Conn[] = [];
        try {
          for (let i = 0; i < 40; i++) {
            const conn = await Deno.connect({ hostname: "127.0.0.1", port }).catch(() => null);
            if (!conn) continue;
            idle.push(conn);
            // A head begun and never finished: the connection stays until the header timeout.
            await conn.write(encoder.encode("GET /health/live HTTP/1.1\r\n")).catch(() => {});
          }
          await new Promise((resolve) => setTimeout(resolve, 500));
          assert.equal(exited, false, `the gateway runs on: ${gateway.lines.slice(-3).join("\n")}`);
          const refused = await statusLine(port, "/health/live");
          assert.ok(
            refused.startsWith("HTTP/1.1 503") || refused.startsWith("HTTP/1.1 200"),
            `a new client gets an answer, not a closed connection: ${refused}`,
          );
        } finally {
          for (const conn of idle) conn.close();
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(await statusLine(port, "/health/live"), "HTTP/1.1 200 OK");
        assert.equal(exited, false);
      });
    }
  },
});
