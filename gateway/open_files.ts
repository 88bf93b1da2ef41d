/**
 * Room for client connections under the process's open-file limit (`ulimit -n`). Behind the
 * slow-client relay each connection holds three descriptors (README, "Known limits"); at the
 * limit, `Deno.serve`'s accept on the relay's Unix socket failed with EMFILE, an uncaught
 * `Http: Error: Too many open files`, and the gateway exited with every connection (a resource
 * review, 2026-12-06). So the relay takes no more connections than leave `SPARE` descriptors for
 * the rest (NATS, the inner accept, the metrics listener), and answers the others 503 at once.
 * Linux only (`/proc`); elsewhere nothing is counted.
 *
 * @example
 * ```ts ignore
 * const room = new OpenFileRoom();
 * if (room.full(openConnections)) refuse(client);
 * ```
 */

/** Descriptors kept beside the clients' connections. */
const SPARE = 32;
/**
 * Connections answered 503 at once, at most: each holds its descriptor while its request drains
 * (up to a second). Unbounded, a flood of refused connections ate the spare, and the next relayed
 * connection's inner accept failed with EMFILE and the gateway exited (a review, 2026-12-06: 80
 * idle connections, then a few relayed ones closing). Past it a connection is closed unanswered.
 */
export const REFUSING_AT_ONCE = SPARE / 2;
/** Descriptors a client connection holds: its socket, and both ends of the relay's. */
const PER_CONNECTION = 3;
/** How often the limit is read again (`prlimit` can change it while the process runs). */
const READ_EVERY_MS = 1_000;

function openFileLimit(): number | undefined {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
    return soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

function openFiles(): number | undefined {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n;
  } catch {
    return undefined;
  }
}

export class OpenFileRoom {
  /** Descriptors open before any client connected (counted once, when made). */
  readonly #base = openFiles();
  #limit = openFileLimit();
  #readAt = Date.now();

  /** The most client connections the limit leaves room for, or undefined when unknown. */
  connections(): number | undefined {
    if (Date.now() - this.#readAt > READ_EVERY_MS) {
      this.#limit = openFileLimit();
      this.#readAt = Date.now();
    }
    if (this.#limit === undefined || this.#base === undefined) return undefined;
    return Math.max(0, Math.floor((this.#limit - this.#base - SPARE) / PER_CONNECTION));
  }

  /** Whether `open` client connections leave no room for another. */
  full(open: number): boolean {
    const most = this.connections();
    return most !== undefined && open >= most;
  }
}
