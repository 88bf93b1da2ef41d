import assert from "node:assert/strict";
import { startNatsServer, waitForNatsServer } from "./nats_server.ts";

// Ports are picked free and released before the server binds them: another test's nats-server
// taking one first answered for ours, and the test froze a server its clients did not use.
Deno.test("[testing] a nats-server whose port another server holds is not taken for started", async () => {
  await using holder = await startNatsServer();
  const late = new Deno.Command("nats-server", {
    args: ["-a", "127.0.0.1", "-p", String(holder.port), "-n", "late"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await assert.rejects(
      waitForNatsServer(late, holder.port, "late"),
      /it exited \(oe-test-\w+ answers on its port\)/,
    );
  } finally {
    try {
      late.kill("SIGKILL");
    } catch {
      // Exited already (the port was taken).
    }
    await late.status;
  }
});

Deno.test("[testing] a port held by something that never speaks fails the wait, not hangs it", async () => {
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (silent.addr as Deno.NetAddr).port;
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) accepted.push(conn);
  })();
  const late = new Deno.Command("nats-server", {
    args: ["-a", "127.0.0.1", "-p", String(port), "-n", "late"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await assert.rejects(waitForNatsServer(late, port, "late"), /it exited/);
  } finally {
    try {
      late.kill("SIGKILL");
    } catch {
      // Exited already (the port was taken).
    }
    await late.status;
    silent.close();
    await accepting.catch(() => {});
    accepted.forEach((conn) => conn.close());
  }
});
