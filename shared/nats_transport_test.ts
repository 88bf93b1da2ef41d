import assert from "node:assert/strict";
import { describeStartFailure } from "./lifecycle.ts";
import { connectNats, DenoTransport } from "./nats_transport.ts";
import { testBus } from "./testing.ts";
import { startNatsServer } from "@testing/nats_server.ts";
import { eventually } from "@testing/eventually.ts";
import type { NatsConnection } from "@nats-io/nats-core";

/** Resolves once `sub` has seen `count` messages (bounded: a lost frame fails, not hangs). */
async function receive(
  sub: AsyncIterable<{ string(): string }>,
  count: number,
  ms = 5_000,
): Promise<string[]> {
  const seen: string[] = [];
  const collect = (async () => {
    for await (const message of sub) {
      seen.push(message.string());
      if (seen.length === count) return;
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  await Promise.race([collect, late]);
  clearTimeout(timer);
  return seen;
}

Deno.test("[nats transport] frames queued from separate tasks leave in the order they were sent", async () => {
  await using t = await testBus();
  const subject = `${t.prefix}.order`;
  const receiver = await connectNats({ servers: t.natsUrl });
  const sender = await connectNats({ servers: t.natsUrl });
  try {
    const sub = receiver.subscribe(subject);
    await receiver.flush();
    const count = 300;
    const received = receive(sub, count);
    const sent: string[] = [];
    // Each publish from a task of its own, as requests arriving over HTTP are: many of them
    // share one write, some a write of their own, and the order must hold across both.
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            sender.publish(subject, String(i));
            sent.push(String(i));
            resolve();
          }, i % 3)
        )),
    );
    assert.deepEqual(await received, sent);
  } finally {
    await sender.close();
    await receiver.close();
  }
});

Deno.test("[nats transport] draining right after publishing still delivers every frame", async () => {
  await using t = await testBus();
  const subject = `${t.prefix}.close`;
  const receiver = await connectNats({ servers: t.natsUrl });
  try {
    const sub = receiver.subscribe(subject);
    await receiver.flush();
    const received = receive(sub, 50);
    const sender = await connectNats({ servers: t.natsUrl });
    for (let i = 0; i < 50; i++) sender.publish(subject, String(i));
    // No await in between: the frames are still waiting for their immediate when the drain's
    // PING is queued behind them (Bus.close drains).
    await sender.drain();
    assert.deepEqual(await received, Array.from({ length: 50 }, (_, i) => String(i)));
  } finally {
    await receiver.close();
  }
});

Deno.test("[nats transport] a tls:// URL is refused by a server without TLS, never plaintext", async (t) => {
  await using bus = await testBus();
  const plain = bus.natsUrl.replace(/^nats:\/\//, "");
  for (const servers of [`tls://${plain}`, [`TLS://${plain}`]]) {
    await t.step(String(servers), async () => {
      await assert.rejects(connectNats({ servers }), /offers none/);
    });
  }
  await t.step("the start-up line names the cause once, and what to do", async () => {
    const url = `tls://${plain}`;
    const error = await connectNats({ servers: url }).catch((e) => e);
    // It said "Cannot connect to NATS: Cannot connect to NATS at ..." with no fix (an operator
    // review found the README's quote of it wrong).
    assert.equal(
      describeStartFailure("connect to NATS", error, { url }),
      `Cannot connect to NATS at ${plain}: a tls:// URL asks for TLS and the server offers none ` +
        "(bus requests carry passwords: no plaintext). Turn TLS on in that server, or set " +
        "NATS_URL to one that offers it.",
    );
  });
  await t.step("nats:// still connects in plaintext", async () => {
    const nc = await connectNats({ servers: `nats://${plain}` });
    try {
      // Connected: a round trip to the server answers.
      await nc.flush();
      assert.equal(nc.isClosed(), false);
      // In plaintext: the server asks for no TLS and the transport did not start any.
      assert.notEqual(nc.info?.tls_required, true);
      const { transport } = (nc as unknown as { protocol: { transport: DenoTransport } }).protocol;
      assert.ok(transport instanceof DenoTransport, "the Deno transport carries the connection");
      assert.equal(transport.isEncrypted(), false);
    } finally {
      await nc.close();
    }
  });
});

Deno.test("[nats transport] connectNats logs in with the user and password or token of the URL", async (t) => {
  await t.step("user and password (percent-encoded)", async () => {
    await using nats = await startNatsServer({
      login: { user: "oe", password: "pw-SECRET/1234@x" },
    });
    const hostPort = `127.0.0.1:${nats.port}`;
    const nc = await connectNats({ servers: [`nats://oe:pw-SECRET%2F1234%40x@${hostPort}`] });
    // The server the client names (in status events, logs) carries no password.
    assert.doesNotMatch(nc.getServer(), /SECRET/);
    await nc.close();
    await assert.rejects(
      connectNats({ servers: [`nats://oe:wrong@${hostPort}`], maxReconnectAttempts: 0 }),
      /Authorization Violation/,
    );
  });
  await t.step("a token", async () => {
    await using nats = await startNatsServer({ login: { token: "tok-SECRET-1234" } });
    const hostPort = `127.0.0.1:${nats.port}`;
    const nc = await connectNats({ servers: `nats://tok-SECRET-1234@${hostPort}` });
    try {
      await nc.flush();
      // The server the client names (in status events, logs) carries no token.
      assert.doesNotMatch(nc.getServer(), /SECRET/);
    } finally {
      await nc.close();
    }
    await assert.rejects(
      connectNats({ servers: `nats://tok-WRONG@${hostPort}`, maxReconnectAttempts: 0 }),
      /Authorization Violation/,
    );
  });
});

Deno.test("[nats transport] a node that accepts and never speaks: the connect gives up and closes its socket", async () => {
  // What a frozen nats-server looks like to a new connection: TCP accepted, no INFO ever.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  const accepted = listener.accept();
  try {
    const began = Date.now();
    await assert.rejects(
      connectNats({ servers: `127.0.0.1:${port}`, timeout: 300, reconnect: false }),
    );
    assert.ok(Date.now() - began < 5_000, "gave up within the connect timeout");
    const conn = await accepted;
    // The client's side is closed: the server reads the end of the stream, not silence.
    const read = conn.read(new Uint8Array(64));
    const closed = await Promise.race([
      read.then((n) => n === null, () => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000)),
    ]);
    conn.close();
    assert.ok(closed, "the client closed the socket it opened");
  } finally {
    listener.close();
  }
});

// A server at its max_connections greets a new client and refuses it at once. Until 2026-12-06
// nats.js, hearing the refusal in its own packet, reconnected until its timeout, and the start
// line said nothing answered there (a resource review). Several connects: the refusal arrives
// with the greeting or after it, as the server's writes fall.
Deno.test("[nats transport] a server at its max_connections: the connect says so, and the start line names it", async () => {
  await using nats = await startNatsServer({ maxConnections: 1 });
  // The start's own check (a connection that read the greeting and closed) may still count for
  // a moment: the first connection tries again until the server has let go of it (a CI run).
  let first: NatsConnection | undefined;
  await eventually(
    async () =>
      (first = await connectNats({ servers: nats.url }).catch(() => undefined)) !== undefined,
    5_000,
    "the first connection",
  );
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      const error = await connectNats({ servers: nats.url, timeout: 1_000 }).then(
        () => assert.fail("a second connection was taken"),
        (error) => error,
      );
      assert.equal(
        describeStartFailure("connect to NATS", error, { url: nats.url, setting: "NATS_URL" }),
        `Cannot connect to NATS at 127.0.0.1:${nats.port}: it refused the connection (maximum ` +
          "connections exceeded). Raise its max_connections, or set NATS_URL to a server with room.",
      );
    }
  } finally {
    await first?.close();
  }
});
