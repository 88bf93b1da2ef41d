/**
 * The connection a process's JetStream traffic goes on (`Bus.jetStreamConnection`): fact
 * publishes, consumers' pulls and acks, stream and consumer management, the gateway's reads of the
 * fact stream. Not the bus's main connection: nats-server handles a client's JetStream publish, ack
 * or API request within that client's read loop, so a store that stalls (a full disk) stalls
 * everything the connection carries; the client found it stale every 3 s, and every request it
 * served or sent failed for as long as the stall lasted (a resource review, 2026-12-06; measured
 * again: with the JetStream traffic on a connection of its own, requests went on unhurt beside it).
 * Now a stall holds back only the facts, which wait in the outboxes
 * (testing/faults_jetstream_stall_test.ts).
 *
 * It is made on the node the main connection is on, and both walk the same list of servers after a
 * loss (shared/bus.ts `connectionOptions`): the gateway's check of the fact stream reads it here
 * for the node its fact subscription hears on (`onMainNode`). Opened at its first use, made again
 * when it closed by itself, closed with the bus.
 */
import { errors, type NatsConnection } from "@nats-io/nats-core";
import { meterConnection } from "./bus_metrics.ts";
import { Link } from "./bus_replies.ts";
import type { Logger } from "./log.ts";

/** How often, at most, a connection found on another node than the main one is made again. */
const REJOIN_MS = 10_000;

/** Opens a connection to `servers`, tried in that order, named `name`. */
export type Connect = (servers: string[], name: string | undefined) => Promise<NatsConnection>;

export class JetStreamConnection {
  readonly #main: NatsConnection;
  readonly #connect: Connect;
  readonly #servers: string[];
  readonly #name: string | undefined;
  readonly #log: Logger;
  #opening: Promise<NatsConnection> | undefined;
  #link: Link | undefined;
  #rejoinedAt = -Infinity;

  constructor(
    main: NatsConnection,
    options: { connect: Connect; servers: string[]; name?: string; log: Logger },
  ) {
    this.#main = main;
    this.#connect = options.connect;
    this.#servers = options.servers;
    this.#name = options.name && `${options.name} (JetStream)`;
    this.#log = options.log;
  }

  /** The connection, opened now if it is not (or closed by itself: an aborted reconnect). */
  get(): Promise<NatsConnection> {
    if (this.#main.isClosed()) return Promise.reject(new errors.ClosedConnectionError());
    if (this.#opening) return this.#opening;
    const opening = this.#open();
    this.#opening = opening;
    const forget = () => {
      if (this.#opening === opening) this.#opening = undefined;
    };
    opening.then((nc) => nc.closed().then(forget), forget);
    return opening;
  }

  /**
   * The connection when it is on the main connection's node; otherwise undefined, and (at most once
   * in REJOIN_MS) it is closed, to be made there at the next `get`. Their reconnects may part them
   * (a node refusing one of the two for a moment); a read of the fact stream on another node says
   * nothing of what the main connection's node hears (a review: with the gateway's node cut off
   * and its JetStream connection on the far side, its cache served pages 2-4 s stale again and
   * again for the whole partition).
   */
  async onMainNode(): Promise<NatsConnection | undefined> {
    const nc = await this.get();
    const here = this.#main.info?.server_name;
    if (here !== undefined && nc.info?.server_name === here) return nc;
    if (Date.now() - this.#rejoinedAt >= REJOIN_MS && !this.#main.isClosed()) {
      this.#rejoinedAt = Date.now();
      this.#log.info("JetStream connection on another node than the main one: made again there", {
        main: here,
        jetStream: nc.info?.server_name,
      });
      this.#opening = undefined;
      await closeConnection(nc, this.#log);
    }
    return undefined;
  }

  /** Subscriptions the server refused on it since it last connected (0 while it is not open). */
  get refusedSubscriptions(): number {
    return this.#link?.refusedSubscriptions ?? 0;
  }

  /** Waits until the server has seen every subscription made on it so far (if it is open). */
  async flush(): Promise<void> {
    const nc = await this.#opening?.catch(() => undefined);
    if (nc && !nc.isClosed()) await nc.flush();
  }

  async close(): Promise<void> {
    const nc = await this.#opening?.catch(() => undefined);
    if (nc) await closeConnection(nc, this.#log);
  }

  async #open(): Promise<NatsConnection> {
    const nc = await this.#connect(this.#startingHere(), this.#name);
    // Its losses and returns are logged and counted as the main connection's are.
    const link = new Link({
      which: " (JetStream connection)",
      refusal: "fact consumers on it receive nothing",
    });
    this.#link = link;
    link.follow(nc, this.#log, meterConnection(nc), { lost: () => {}, back: () => {} })
      .catch(() => {});
    if (this.#main.isClosed()) await nc.close();
    return nc;
  }

  /** The servers, the main connection's first (when it is one of them). */
  #startingHere(): string[] {
    const here = this.#main.getServer();
    const first = this.#servers.find((server) => hostAndPort(server) === here);
    return first === undefined
      ? this.#servers
      : [first, ...this.#servers.filter((s) => s !== first)];
  }
}

/** `host:port` of a server URL, as nats.js names the server it is connected to. */
function hostAndPort(server: string): string {
  const bare = server.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/^[^@/]*@/, "");
  const hostPort = bare.split("/")[0];
  return /:\d+$/.test(hostPort) ? hostPort : `${hostPort}:4222`;
}

/**
 * Drains `nc`, or closes it when NATS is away (nats.js rejects a drain then: what was not sent is
 * lost as it would be anyway, and a process stopping during an outage still exits cleanly).
 */
export async function closeConnection(nc: NatsConnection, log: Logger): Promise<void> {
  if (nc.isClosed()) return;
  try {
    await nc.drain();
  } catch (error) {
    log.warn("cannot drain the NATS connection; closing it without", { error });
    if (!nc.isClosed()) await nc.close();
  }
}
