/**
 * A TCP proxy for tests that can lose its upstream host without a word: `loseHost()` stops
 * forwarding on every connection made so far, in both directions, and never closes them, as when
 * a host (a Postgres primary, a network path) vanishes: no FIN, no RST, only silence. Connections
 * made afterwards are forwarded again (the host that took over, reached anew). `loseHostAfter()`
 * loses it at an exact point of Postgres's protocol instead: right after a message of the server.
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
  /**
   * Silences each connection made from now on, for good, once its server has sent a message of
   * Postgres's protocol whose type (first byte) is `type`, passed on whole: the host lost between
   * two messages it sent at once (CopyDone, "c", and the COPY's CommandComplete). Resolves when
   * one was. Postgres without TLS only (its every message then has a type and a length).
   */
  loseHostAfter(type: string): Promise<void>;
}

/**
 * Reads a server's messages across chunks (a type byte, then a length that counts itself and
 * what follows, without TLS): each chunk gives the type of each message that ends in it, and
 * after how many of its bytes.
 */
function messageEnds(): (chunk: Uint8Array) => [type: number, end: number][] {
  const header: number[] = [];
  let left = 0;
  return (chunk) => {
    const ends: [number, number][] = [];
    for (let at = 0; at < chunk.length;) {
      if (left > 0) {
        const taken = Math.min(left, chunk.length - at);
        at += taken;
        left -= taken;
      } else {
        header.push(chunk[at++]);
        if (header.length < 5) continue;
        left = new DataView(Uint8Array.from(header).buffer).getUint32(1) - 4;
      }
      if (left === 0) {
        ends.push([header[0], at]);
        header.length = 0;
      }
    }
    return ends;
  };
}

/**
 * Forwards `from` to `to` until either ends; a silenced pair is left open and quiet. `cut` says
 * where in a chunk forwarding stops for good (null: not in it).
 */
async function pipe(
  from: Deno.Conn,
  to: Deno.Conn,
  silenced: () => boolean,
  cut: (chunk: Uint8Array) => number | null = () => null,
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
      if (silenced()) continue;
      const end = cut(buffer.subarray(0, n)) ?? n;
      for (let sent = 0; sent < end;) sent += await to.write(buffer.subarray(sent, end));
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
  let lostAfter: { type: number; lose: () => void } | null = null;
  const pairs = pairingListener(targetPort, (client, server) => {
    const silenced = () => lost.has(client);
    pipe(client, server, silenced);
    if (!lostAfter) return void pipe(server, client, silenced);
    // Read from the connection's first byte, to know where each message starts.
    const { type, lose } = lostAfter;
    const ends = messageEnds();
    const cut = (chunk: Uint8Array) => {
      const end = ends(chunk).find(([sent]) => sent === type)?.[1];
      if (end === undefined) return null;
      lost.add(client).add(server);
      lose();
      return end;
    };
    pipe(server, client, silenced, cut);
  });
  return {
    port: pairs.port,
    get accepted() {
      return pairs.conns.length / 2;
    },
    loseHost: () => pairs.conns.forEach((conn) => lost.add(conn)),
    loseHostAfter: (type) => new Promise((lose) => lostAfter = { type: type.charCodeAt(0), lose }),
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
