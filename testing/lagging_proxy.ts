/**
 * A TCP proxy for tests that holds what the server sends back for `lagMs` before passing it on,
 * in order: a slow link or a busy server, whose answers come late but come (JetStream acks that
 * each take a while, say). Set `lagMs` to 0 to heal it; data already held keeps its time.
 * `sendLag` does the same to what the client sends, chunk by chunk (a COMMIT held on its way).
 *
 * @example
 * ```ts ignore
 * await using proxy = laggingProxy(nats.port, 100);
 * // connect to nats://127.0.0.1:${proxy.port} ...
 * proxy.lagMs = 0;
 * ```
 */
import { closeAll, pairingListener } from "./tcp_pairs.ts";

export interface LaggingProxy extends AsyncDisposable {
  port: number;
  /** How long each chunk from the server is held (read at each chunk). */
  lagMs: number;
  /** How long a chunk from the client is held, asked of each chunk (none at first). */
  sendLag: (chunk: Uint8Array) => number;
}

/** Copies `from` to `to`, each chunk after `lagMs()`, until either ends. */
async function pipe(
  from: Deno.Conn,
  to: Deno.Conn,
  lagMs: (chunk: Uint8Array) => number,
): Promise<void> {
  let sending = Promise.resolve();
  try {
    for await (const chunk of from.readable) {
      const due = Date.now() + lagMs(chunk);
      sending = sending.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        for (let sent = 0; sent < chunk.length;) sent += await to.write(chunk.subarray(sent));
        // A chunk held while the other side closed has nowhere to go: the pair is done.
      }).catch(() => closeAll([from, to]));
    }
    await sending;
  } catch {
    // Closed by the other direction or by dispose.
  }
  closeAll([from, to]);
}

/** Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:`targetPort`. */
export function laggingProxy(targetPort: number, lagMs: number): LaggingProxy {
  const pairs = pairingListener(targetPort, (client, server) => {
    pipe(client, server, (chunk) => proxy.sendLag(chunk));
    pipe(server, client, () => proxy.lagMs);
  });
  const proxy: LaggingProxy = {
    port: pairs.port,
    lagMs,
    sendLag: () => 0,
    [Symbol.asyncDispose]: () => pairs.close(),
  };
  return proxy;
}
