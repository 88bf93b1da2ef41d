/**
 * The connection a process's JetStream traffic goes on (`Bus.jetStreamConnection`): fact
 * publishes, consumers' pulls and acks, stream and consumer management, the gateway's first read of
 * the fact stream each round. Not the bus's main connection: nats-server handles a client's
 * JetStream publish, ack or API request within that client's read loop, so a store that stalls (a
 * full disk) stalls everything the connection carries; the client found it stale every 3 s, and
 * every request it served or sent failed for as long as the stall lasted (a resource review,
 * 2026-12-06; measured again: with the JetStream traffic on a connection of its own, requests went
 * on unhurt beside it). Now a stall holds back only the facts, which wait in the outboxes
 * (testing/faults_jetstream_stall_test.ts).
 *
 * Opened at its first use, made again when it closed by itself, closed with the bus. It may sit on
 * another node of a cluster than the main connection (each picks one at random): the gateway's
 * check of the fact stream reads the stream here first, and then, when that was answered, on the
 * main connection, for the node its fact subscription hears on (gateway/unheard_facts.ts).
 */
import { errors, type NatsConnection } from "@nats-io/nats-core";
import { meterConnection } from "./bus_metrics.ts";
import { Link } from "./bus_replies.ts";
import type { Logger } from "./log.ts";

/** Opens a connection to one of `servers`, named `name`, whose reconnects `link` paces. */
export type Connect = (
  servers: string[],
  name: string | undefined,
  link: Link,
) => Promise<NatsConnection>;

export class JetStreamConnection {
  readonly #main: NatsConnection;
  readonly #connect: Connect;
  readonly #servers: string[];
  readonly #name: string | undefined;
  readonly #log: Logger;
  #opening: Promise<NatsConnection> | undefined;
  #link: Link | undefined;

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
    // Its losses and returns are logged and counted as the main connection's are.
    const link = new Link({
      which: " (JetStream connection)",
      refusal: "facts stop on it (consumers receive none, or the relay's publishes go unanswered)",
    });
    const nc = await this.#connect(this.#servers, this.#name, link);
    this.#link = link;
    link.follow(nc, this.#log, meterConnection(nc), { lost: () => {}, back: () => {} })
      .catch(() => {});
    if (this.#main.isClosed()) await nc.close();
    return nc;
  }
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
