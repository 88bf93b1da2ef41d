/**
 * For what a process keeps from facts heard over core NATS (the gateway's response cache, the
 * services' access projections): core NATS delivers at most once, so whenever a subscription
 * may have missed a message, what was kept from the messages before may be stale. This follows
 * the connection's status and says so: on a disconnect, a reconnect under way, a stale or forced
 * reconnect the keeper is suspended (it serves and stores nothing, and is emptied); after a
 * reconnect it resumes, empty, once a round trip proves the server has the subscriptions again;
 * a slow consumer or an error empties it; a connection closed for good leaves it suspended, and so
 * does `signal` aborting (its keeper stopped following the facts).
 *
 * @example
 * ```ts ignore
 * emptyOnMissedFacts(bus, cache, logger, "cache").catch(() => cache.suspend(true));
 * ```
 */
import type { Status } from "@nats-io/nats-core";
import type { Bus } from "./bus.ts";
import type { Logger } from "./log.ts";

/** What is kept from facts: it can stop serving (suspend) and be emptied (clear). */
export interface KeptFromFacts {
  /** Serve and store nothing while suspended; emptied on both changes. */
  suspend(suspended: boolean): void;
  clear(): void;
}

/**
 * Follows `bus`'s connection until it closes or `signal` aborts (see the module doc); `what` names
 * it in logs. A keeper that unsubscribed from the facts must abort: followed on, a reconnect
 * resumed it, and it served what no fact dropped any more (a review).
 * While NATS is away nats.js reports every reconnect attempt (one every 250 ms): the keeper is
 * suspended on each, but the log says so once per loss and once when it resumes.
 */
export async function emptyOnMissedFacts(
  bus: Bus,
  kept: KeptFromFacts,
  log: Logger,
  what: string,
  signal?: AbortSignal,
): Promise<void> {
  const statuses = bus.nc.status() as AsyncIterable<Status> & { stop(): void };
  // Ends the loop below: nats.js's status iterator stops on `stop`.
  signal?.addEventListener("abort", () => statuses.stop(), { once: true });
  if (signal?.aborted) statuses.stop();
  let suspended = false;
  const suspend = (status: string) => {
    kept.suspend(true);
    if (suspended) return;
    suspended = true;
    log.info(`${what} emptied and suspended: the fact subscription may miss facts`, { status });
  };
  const resume = () => {
    kept.suspend(false);
    suspended = false;
    log.info(`${what} resumed, empty: the fact subscription is back`);
  };
  for await (const status of statuses) {
    if (signal?.aborted) break;
    switch (status.type) {
      case "disconnect":
      case "reconnecting":
      case "staleConnection":
      case "forceReconnect":
        suspend(status.type);
        break;
      case "reconnect":
        suspend(status.type);
        // A round trip: the server has the subscriptions again before anything is kept.
        await bus.nc.flush().then(() => signal?.aborted || resume(), () => {});
        break;
      case "slowConsumer":
      case "error":
        kept.clear();
        log.info(`${what} emptied: the fact subscription may have missed facts`, {
          status: status.type,
        });
        break;
    }
  }
  // The connection is closed for good, or the keeper stopped following: nothing is kept any more.
  kept.suspend(true);
}
