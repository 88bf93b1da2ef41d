/**
 * Cutting off clients that send their headers too slowly. `Deno.serve` has no header timeout
 * (checked on Deno 2.9: a client sending one header byte a second stays connected for good, and
 * node:http's `headersTimeout` is not enforced either), and it never shows the handler a request
 * whose headers have not all arrived. So the gateway listens itself and relays each connection
 * to `Deno.serve` on a private Unix socket, watching only one thing: from the moment a request
 * may start (the connection opened, or the last response bytes went out) the client has
 * `headerTimeoutMs` to finish its headers (`\r\n\r\n`), or the connection is closed. The clock
 * also closes keep-alive connections left idle that long. Bodies are timed by body.ts.
 *
 * @example
 * ```ts ignore
 * const server = await serveGuarded({ hostname: "127.0.0.1", port: 8080, headerTimeoutMs: 10_000 },
 *   app.fetch);
 * await server.shutdown();
 * ```
 */

export interface GuardOptions {
  hostname: string;
  port: number;
  headerTimeoutMs: number;
  onListen?: (addr: { hostname: string; port: number }) => void;
}

export interface GuardedServer {
  readonly port: number;
  /** Stops accepting, finishes the requests in flight, then closes every connection. */
  shutdown(): Promise<void>;
}

const CRLFCRLF = [13, 10, 13, 10];

/** Follows `\r\n\r\n` across chunks: `matched` is how much of it the last chunk ended with. */
class HeaderEnd {
  matched = 0;
  /** True when the headers end inside `chunk`. */
  foundIn(chunk: Uint8Array): boolean {
    for (const byte of chunk) {
      if (byte === CRLFCRLF[this.matched]) {
        if (++this.matched === 4) return true;
      } else this.matched = byte === 13 ? 1 : 0;
    }
    return false;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** One client connection relayed to the inner server under the header clock. */
async function relay(client: Deno.Conn, socketPath: string, headerTimeoutMs: number) {
  const upstream = await Deno.connect({ transport: "unix", path: socketPath });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const close = () => {
    clearTimeout(timer);
    for (const conn of [client, upstream]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  };
  let end = new HeaderEnd();
  /** The client owes headers from now on (a new connection, or a response went out). */
  const expectHeaders = () => {
    clearTimeout(timer);
    end = new HeaderEnd();
    timer = setTimeout(close, headerTimeoutMs);
  };
  expectHeaders();
  const toServer = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await client.read(buffer);
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      if (timer !== undefined && end.foundIn(chunk)) {
        clearTimeout(timer);
        timer = undefined;
      }
      await writeAll(upstream, chunk);
    }
  })();
  const toClient = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await upstream.read(buffer);
      if (n === null) break;
      await writeAll(client, buffer.subarray(0, n));
      expectHeaders();
    }
  })();
  await Promise.race([toServer, toClient]).catch(() => {});
  close();
  await Promise.allSettled([toServer, toClient]);
}

/** Serves `handler` behind the header clock (see the module comment). */
export async function serveGuarded(
  options: GuardOptions,
  handler: Deno.ServeHandler<Deno.UnixAddr>,
): Promise<GuardedServer> {
  const dir = await Deno.makeTempDir({ prefix: "gateway-" });
  const socketPath = `${dir}/http.sock`;
  const inner = Deno.serve({ path: socketPath, onListen: () => {} }, handler);
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;
  options.onListen?.({ hostname: addr.hostname, port: addr.port });
  const connections = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const client of listener) {
      client.setNoDelay(true);
      const done = relay(client, socketPath, options.headerTimeoutMs).catch(() => client.close());
      connections.add(done);
      done.finally(() => connections.delete(done));
    }
  })().catch(() => {});
  return {
    port: addr.port,
    async shutdown() {
      listener.close();
      await accepting;
      await inner.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
