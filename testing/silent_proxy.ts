/**
 * A TCP proxy for tests that can lose its upstream host without a word: `loseHost()` stops
 * forwarding on every connection made so far, in both directions, and never closes them, as when
 * a host (a Postgres primary, a network path) vanishes: no FIN, no RST, only silence. Connections
 * made afterwards are forwarded again (the host that took over, reached anew).
 *
 * @example
 * ```ts ignore
 * await using proxy = silentProxy(5432);
 * // connect to 127.0.0.1:${proxy.port} ...
 * proxy.loseHost();
 * ```
 */
import { closeAll, pairingListener } from "./tcp_pairs.ts";

export interface SilentProxy extends AsyncDisposable {
  port: number;
  /** How many connections it has forwarded so far. */
  readonly accepted: number;
  /** Silences every connection made so far, for good. */
  loseHost(): void;
}

/** Forwards `from` to `to` until either ends; a silenced pair is left open and quiet. */
async function pipe(from: Deno.Conn, to: Deno.Conn, silenced: () => boolean): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
      if (silenced()) continue;
      for (let sent = 0; sent < n;) sent += await to.write(buffer.subarray(sent, n));
    }
  } catch {
    // Closed by the other direction or by dispose.
  }
  // An end seen on a silenced connection never reaches the other side: the host is gone.
  if (!silenced()) closeAll([from, to]);
}

/** Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:`targetPort`. */
export function silentProxy(targetPort: number): SilentProxy {
  const lost = new Set<Deno.Conn>();
  const pairs = pairingListener(targetPort, (client, server) => {
    const silenced = () => lost.has(client);
    pipe(client, server, silenced);
    pipe(server, client, silenced);
  });
  return {
    port: pairs.port,
    get accepted() {
      return pairs.conns.length / 2;
    },
    loseHost: () => pairs.conns.forEach((conn) => lost.add(conn)),
    [Symbol.asyncDispose]: () => pairs.close(),
  };
}

/** A silent proxy to the Postgres of `databaseUrl`, and that URL through it (`url`). */
export function silentProxyTo(databaseUrl: string): SilentProxy & { url: string } {
  const proxy = silentProxy(Number(new URL(databaseUrl).port || 5432));
  const proxied = new URL(databaseUrl);
  proxied.port = String(proxy.port);
  return Object.assign(proxy, { url: proxied.href });
}
