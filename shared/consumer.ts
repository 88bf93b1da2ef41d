/**
 * Consuming facts: a durable JetStream consumer (survives restarts, shared by every instance of
 * the consuming service) that hands valid facts to `handle` in batches and acknowledges them
 * only after `handle` returns. `handle` must be idempotent on `fact.id`: a batch whose
 * acknowledgement was lost (a crash right after commit) is delivered again.
 *
 * A message that is not a valid fact is parked (copied to `<prefix>.parked.<subject>`, kept in
 * its own stream for people to inspect) and terminated, so it is neither lost nor retried
 * forever, and it never stops the facts behind it.
 *
 * @example
 * ```ts ignore
 * const consumer = await consumeFacts(bus, {
 *   durable: "catalog-payments",
 *   subject: "facts.payments.>",
 *   log,
 *   handle: async (facts) => { for (const fact of facts) await apply(fact); },
 * });
 * // on shutdown:
 * await consumer.stop();
 * ```
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import type { Bus } from "./bus.ts";
import { ensureFactStream, type Fact, factSchema } from "./facts.ts";
import { facts } from "./subjects.ts";
import type { Logger } from "./log.ts";

export interface FactConsumerOptions {
  /** Durable consumer name: one per consuming purpose, shared by all its instances. */
  durable: string;
  /**
   * Fact subject filter without the bus prefix, e.g. `facts.payments.>`. One filter only:
   * NATS 2.9 (our machines) does not know `filter_subjects`; use wildcards.
   */
  subject: string;
  handle: (facts: Fact[]) => Promise<void>;
  log: Logger;
  /** Most facts per batch (default 500). */
  batchSize?: number;
  /** How long an unacknowledged batch waits before redelivery (default 30 s). */
  ackWaitMs?: number;
}

export interface FactConsumer {
  /** Finishes the batch in hand, then stops fetching. */
  stop(): Promise<void>;
}

async function ensureParkedStream(bus: Bus): Promise<void> {
  const jsm = await jetstreamManager(bus.nc);
  const name = facts.parkedStream(bus.prefix);
  const exists = await jsm.streams.info(name).then(() => true, () => false);
  if (!exists) {
    await jsm.streams.add({ name, subjects: [bus.subject(facts.parked)] }).catch(async (error) => {
      if (!await jsm.streams.info(name).catch(() => null)) throw error;
    });
  }
}

function readFact(msg: JsMsg): Fact | undefined {
  try {
    const parsed = factSchema.safeParse(JSON.parse(new TextDecoder().decode(msg.data)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function consumeFacts(bus: Bus, options: FactConsumerOptions): Promise<FactConsumer> {
  const { log } = options;
  const stream = await ensureFactStream(bus);
  await ensureParkedStream(bus);
  const jsm = await jetstreamManager(bus.nc);
  const config = {
    durable_name: options.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: bus.subject(options.subject),
    ack_wait: (options.ackWaitMs ?? 30_000) * 1e6,
    max_ack_pending: 20_000,
  };
  await jsm.consumers.add(stream, config).catch(async () => {
    await jsm.consumers.update(stream, options.durable, {
      filter_subject: config.filter_subject,
      ack_wait: config.ack_wait,
    });
  });
  const js = jetstream(bus.nc);
  const consumer = await js.consumers.get(stream, options.durable);
  const batchSize = options.batchSize ?? 500;
  let stopped = false;

  async function park(msg: JsMsg): Promise<void> {
    const target = bus.subject(`parked.${msg.subject}`);
    await js.publish(target, msg.data, { msgID: `${msg.info.streamSequence}@${stream}` });
    msg.term();
    log.warn("parked a message that is not a valid fact", {
      subject: msg.subject,
      sequence: msg.info.streamSequence,
    });
  }

  async function runOnce(): Promise<void> {
    const messages = await consumer.fetch({ max_messages: batchSize, expires: 1000 });
    const batch: { msg: JsMsg; fact: Fact }[] = [];
    for await (const msg of messages) {
      const fact = readFact(msg);
      if (fact) batch.push({ msg, fact });
      else await park(msg);
    }
    if (!batch.length) return;
    try {
      await options.handle(batch.map((b) => b.fact));
      for (const { msg } of batch) msg.ack();
    } catch (error) {
      log.error("cannot handle facts; they will be redelivered", { error, count: batch.length });
      for (const { msg } of batch) msg.nak(1000);
    }
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        await runOnce();
      } catch (error) {
        if (stopped || bus.nc.isClosed()) break;
        log.warn("fact consumer interrupted; retrying", { error });
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  })();

  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
