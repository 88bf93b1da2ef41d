/**
 * A TCP proxy for tests that holds what the server sends back for `lagMs` before passing it on,
 * in order: a slow link or a busy server, whose answers come late but come (JetStream acks that
 * each take a while, say). Set `lagMs` to 0 to heal it; data already held keeps its time.
 *
 * @example
 * ```ts ignore
 * await using proxy = laggingProxy(nats.port, 100);
 * // connect to nats://127.0.0.1:${proxy.port} ...
 * proxy.lagMs = 0;
 * ```
 */
export interface LaggingProxy extends AsyncDisposable {
  port: number;
  /** How long each chunk from the server is held (read at each chunk). */
  lagMs: number;
}

function closeAll(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
}

/** Copies `from` to `to`, each chunk after `lagMs()`, until either ends. */
async function pipe(from: Deno.Conn, to: Deno.Conn, lagMs: () => number): Promise<void> {
  let sending = Promise.resolve();
  try {
    for await (const chunk of from.readable) {
      const due = Date.now() + lagMs();
      sending = sending.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        for (let sent = 0; sent < chunk.length;) sent += await to.write(chunk.subarray(sent));
      });
    }
    await sending;
  } catch {
    // Closed by the other direction or by dispose.
  }
  closeAll([from, to]);
}

/** Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:`targetPort`. */
export function laggingProxy(targetPort: number, lagMs: number): LaggingProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const proxy: LaggingProxy = {
    port: (listener.addr as Deno.NetAddr).port,
    lagMs,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      closeAll(conns);
    },
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort })
        .catch(() => undefined);
      if (!server) {
        closeAll([client]);
        continue;
      }
      conns.push(client, server);
      pipe(client, server, () => 0);
      pipe(server, client, () => proxy.lagMs);
    }
  })().catch(() => {});
  return proxy;
}
