/**
 * How this process's connection to NATS fares, as metrics: whether it is up (`oe_bus_connected`),
 * how often it was lost and regained (`oe_bus_disconnects_total`, `oe_bus_reconnects_total`, once
 * per loss and once per return, as the bus logs them: nats.js reports every failed reconnect
 * attempt too, and those are not losses), and what it carried (`oe_bus_messages_total`,
 * `oe_bus_bytes_total` by `direction`, read from `nc.stats()` by the `bus` collector). Every
 * counter exists from the start, at 0, so an alert on a rate has something to read before the
 * first loss; `oe_bus_connected` exists while a connection is open.
 *
 * @example
 * ```ts ignore
 * const meter = meterConnection(nc); // shared/bus.ts, once per connection
 * meter.lost(); // the connection was lost (not each failed attempt)
 * meter.back(); // it is back
 * ```
 */
import type { NatsConnection, Stats } from "@nats-io/nats-core";
import { metrics } from "./metrics.ts";

const connected = metrics.gauge(
  "oe_bus_connected",
  "Whether this process's connections to NATS (requests, JetStream) are up (1) or one is lost (0)",
);
const disconnects = metrics.counter(
  "oe_bus_disconnects",
  "Times this process lost a connection to NATS (once per loss, not per reconnect attempt)",
).series();
const reconnects = metrics.counter(
  "oe_bus_reconnects",
  "Times a connection of this process to NATS came back after a loss",
).series();
const messages = metrics.counter(
  "oe_bus_messages",
  "NATS messages this process received (in) and sent (out), as its client counts them",
  ["direction"],
);
const bytes = metrics.counter(
  "oe_bus_bytes",
  "Bytes (headers and payload) of the NATS messages this process received (in) and sent (out)",
  ["direction"],
);
const carried = {
  inMsgs: messages.series("in"),
  outMsgs: messages.series("out"),
  inBytes: bytes.series("in"),
  outBytes: bytes.series("out"),
};
type Carried = keyof typeof carried;

/** Each open connection: whether it is up, and its stats as last added to the counters. */
const open = new Map<NatsConnection, { up: boolean; counted: Stats }>();
let collecting = false;

/**
 * 1 while every open connection is up (a process has two: its requests' and its JetStream
 * traffic's, shared/bus_jetstream.ts; some tests hold more), 0 while one
 * is lost; no value at all while none is open: a process that connected once only to check
 * something (`deno task start` asking whether NATS has JetStream) exported 0 for the rest of its
 * life, and an alert on `oe_bus_connected == 0` fired for good (a review).
 */
function showConnected(): void {
  if (open.size === 0) return connected.remove();
  connected.series().set([...open.values()].every((link) => link.up) ? 1 : 0);
}

/** Adds what a connection carried since it was last read (its counts only grow). */
function count(nc: NatsConnection): void {
  const link = open.get(nc);
  if (!link) return;
  const now = nc.stats();
  for (const key of Object.keys(carried) as Carried[]) {
    const added = now[key] - link.counted[key];
    if (added > 0) carried[key].add(added);
  }
  link.counted = now;
}

/** What the bus tells about one connection's losses and returns. */
export interface ConnectionMeter {
  /** The connection was lost (call once per loss). */
  lost(): void;
  /** The connection is back after a loss. */
  back(): void;
}

/**
 * Counts `nc` among this process's connections, up, until it closes: then its last traffic is
 * counted and it no longer counts. The first connection starts the `bus` collector.
 */
export function meterConnection(nc: NatsConnection): ConnectionMeter {
  const counted = { inBytes: 0, outBytes: 0, inMsgs: 0, outMsgs: 0 };
  open.set(nc, { up: true, counted });
  showConnected();
  if (!collecting) {
    collecting = true;
    metrics.collect("bus", () => {
      for (const each of open.keys()) count(each);
      return Promise.resolve();
    });
  }
  nc.closed().then(() => {
    count(nc);
    open.delete(nc);
    showConnected();
  });
  const mark = (up: boolean) => {
    const link = open.get(nc);
    if (link) link.up = up;
    showConnected();
  };
  return {
    lost: () => {
      disconnects.add();
      mark(false);
    },
    back: () => {
      reconnects.add();
      mark(true);
    },
  };
}
