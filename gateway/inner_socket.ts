/**
 * The private Unix socket the slow-client relay (gateway/slow_clients.ts) hands requests to
 * `Deno.serve` on: one directory per gateway, removed at shutdown. A gateway killed with SIGKILL
 * (or the OOM killer) cannot remove its own, so each start also removes those of gateways proven
 * gone: the socket refuses connections (nothing listens on it any more) and the directory is
 * older than a start takes, so that a gateway starting beside this one, between making its
 * directory and listening, is never touched. A review's kill runs had left twelve behind.
 */

const PREFIX = "gateway-";
const SOCKET = "http.sock";
/** Far longer than a gateway takes from making its directory to listening in it (< 1 ms). */
const STALE_AFTER_MS = 60_000;

/** Where the directories go: `TMPDIR`, as `Deno.makeTempDir` chooses, else `/tmp`. */
function socketBase(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

/** `Deno.serve` on a Unix socket in a directory of its own, which `shutdown` removes. */
export async function innerServer(
  handler: Deno.ServeHandler<Deno.UnixAddr>,
  onError?: (error: unknown) => Response,
) {
  const base = socketBase();
  // Not awaited: a start never waits for the sweep, which only reads and removes dead ones.
  removeDeadSocketDirs(base).catch(() => {});
  const dir = await Deno.makeTempDir({ dir: base, prefix: PREFIX });
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  const socketPath = `${dir}/${SOCKET}`;
  try {
    const server = Deno.serve({ path: socketPath, onListen: () => {}, onError }, handler);
    return {
      socketPath,
      async shutdown() {
        await server.shutdown();
        await remove();
      },
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

/**
 * Removes the gateway socket directories in `base` whose socket nothing listens on, made more
 * than `STALE_AFTER_MS` ago; returns their paths. Anything else is left: a live gateway's,
 * another user's (not ours to remove), one whose state cannot be told.
 */
export async function removeDeadSocketDirs(base: string): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(base)) {
    if (!entry.isDirectory || !entry.name.startsWith(PREFIX)) continue;
    const dir = `${base}/${entry.name}`;
    if (await isDead(dir)) {
      await Deno.remove(dir, { recursive: true }).then(() => removed.push(dir), () => {});
    }
  }
  return removed;
}

/** Old enough, and its socket (or the empty directory a start left) answers no one. */
async function isDead(dir: string): Promise<boolean> {
  const made = await Deno.stat(dir).then((info) => info.mtime?.getTime(), () => undefined);
  if (made === undefined || Date.now() - made < STALE_AFTER_MS) return false;
  try {
    const conn = await Deno.connect({ transport: "unix", path: `${dir}/${SOCKET}` });
    conn.close();
    return false;
  } catch (error) {
    // Refused: the file is there and no process listens. Not found: a start that died before
    // listening. Anything else (permissions) tells nothing.
    return error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.NotFound;
  }
}
