/**
 * What the test proxies (testing/silent_proxy.ts, testing/lagging_proxy.ts) share: a listener on
 * a free port of 127.0.0.1 that pairs each client connection with a new one to the target, and
 * closes them all when it stops. Each proxy decides how the pair's bytes are forwarded.
 *
 * @example
 * ```ts ignore
 * const pairs = pairingListener(5432, (client, server) => forward(client, server));
 * // connect to 127.0.0.1:${pairs.port} ...
 * await pairs.close();
 * ```
 */

/** Closes each of `conns`, whether or not it was closed already. */
export function closeAll(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
}

export interface PairingListener {
  port: number;
  /** Every connection of every pair so far, client then server. */
  readonly conns: Deno.Conn[];
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/**
 * Listens on a free port of 127.0.0.1; each client is paired with a new connection to
 * 127.0.0.1:`targetPort` and handed to `onPair` (a client whose target cannot be reached is
 * closed).
 */
export function pairingListener(
  targetPort: number,
  onPair: (client: Deno.Conn, server: Deno.Conn) => void,
): PairingListener {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort })
        .catch(() => undefined);
      if (!server) {
        closeAll([client]);
        continue;
      }
      conns.push(client, server);
      onPair(client, server);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    conns,
    async close() {
      listener.close();
      await accepting;
      closeAll(conns);
    },
  };
}
