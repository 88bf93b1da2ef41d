/**
 * Consuming facts: a durable JetStream consumer (survives restarts, shared by every instance of
 * the consuming service) that hands valid facts to `handle` in batches and acknowledges them
 * only after `handle` returns, one batch after another: a batch `handle` throws on is handed over
 * again, in place, after growing pauses, and the facts behind it wait (shared/fact_turns.ts).
 * `handle` must be idempotent on `fact.id`: a batch whose acknowledgement was lost (a crash right
 * after commit) is delivered again.
 *
 * What `handle` throws decides how long. A transient failure (shared/transient.ts: the database
 * or the bus unreachable, a 502/503/504, a lock or statement timeout, a deadlock; or any error
 * while the service's `dependencyProblem` check names a problem) is retried for as long as it
 * lasts, minutes or hours: no fact is parked or overtaken because the world was away. Any other
 * failure is a fact that fails while everything else works: its batch is handed over again one
 * fact at a time to find it, and a fact still failing after `keepTurnMs` (30 s) and
 * `parkAfterAttempts` (5) is a poison fact (a bug, data the handler can never take): it is parked
 * like a rejected one, logged at error level (id, type, subject, sequence, attempts, the error,
 * scrubbed; never its data) and counted (`oe_facts_poisoned`), and the facts behind it go on.
 * Before, it was given back and redelivered every ~31 s for good, and each time the facts behind
 * it waited its 30 s again.
 *
 * JetStream's own `max_deliver` is not set, on purpose: retries happen in place (one delivery),
 * so it would not see a poison fact; what it counts are redeliveries (restarts, stops during an
 * outage, lost acknowledgements), which a long outage can pile up; and a message past it is
 * silently skipped (an advisory only), not parked: a fact would be lost for a transient fault.
 *
 * A message that is not a valid fact (not JSON, not the fact schema, or a fact whose own
 * `subject` is not the subject it arrived on) is parked (copied to `<prefix>.parked.<subject>`,
 * kept in its own stream for people to inspect, with headers `Oe-Parked-By` naming the consumer
 * and `Oe-Parked-Reason` saying why) and terminated, so it is neither lost nor retried forever,
 * and it never stops the facts behind it. `handle` may also reject single facts it can never
 * handle (say, values its database refuses): those are parked too and the rest are acked
 * (shared/fact_parking.ts). Facts of a stream lost and made again since their delivery are never
 * settled (shared/fact_batch.ts).
 *
 * `data` is typed by the subject filter (`facts.payments.>` hands over payments' facts) and
 * checked against the registry's schema (shared/fact_catalog.ts); `byType` dispatches by fact
 * type with each handler's `data` typed. `start` chooses where a new consumer begins: the whole
 * stream (default, a replay), a point in time, or new facts only. The pull loop under it (renewing
 * a silent pull, batching, keeping facts in hand from redelivery) is shared/fact_pull.ts. A
 * durable consumer whose service keeps its position in its own database (`keptIn`) replays, at
 * start, what a database restored older than the consumer lacks, and starts again to replay what
 * one lost under it (shared/fact_catch_up.ts, shared/fact_start_again.ts).
 *
 * @example
 * ```ts ignore
 * const consumer = await consumeFacts(bus, {
 *   durable: "catalog-payments",
 *   subject: "facts.payments.>",
 *   log,
 *   dependencyProblem: () => databaseProblem(sql), // shared/db_health.ts
 *   handle: byType({
 *     "payments.stripe-authorization.created": (fact) => link(fact.data.event),
 *   }),
 * });
 * // on shutdown:
 * await consumer.stop();
 * ```
 */
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
  type StreamInfo,
} from "@nats-io/jetstream";
import type { Bus } from "./bus.ts";
import type { FactType } from "./fact_catalog.ts";
import { factSubject } from "./fact_names.ts";
import { type Fact, parseFact } from "./facts.ts";
import { isClusterSettling, openFactStream, whileSettling } from "./fact_streams.ts";
import type { Logger } from "./log.ts";
import { facts } from "./subjects.ts";
import { metrics } from "./metrics.ts";
import { InHand, pullForever, PullHealth } from "./fact_pull.ts";
import { StreamPosition } from "./fact_position.ts";
import { KEPT_EVERY_MS, type PositionStore } from "./fact_kept_position.ts";
import { catchUpFirst, type Consuming, keptBehind } from "./fact_catch_up.ts";
import { healingLosses } from "./fact_start_again.ts";
import { warnOfSkippedRedeliveries } from "./server_defects.ts";
import {
  type BatchContext,
  type Delivered,
  followNewStream,
  fromLostStream,
  handledFacts,
  noteDelivery,
  positionOf,
} from "./fact_batch.ts";
import { ensureParkedStream, park, PARK_RETRY_MS } from "./fact_parking.ts";
import { handleInTurn } from "./fact_turns.ts";

type OrAll<K> = [K] extends [never] ? FactType : K;

/**
 * The fact types a subject filter delivers: `facts.catalog.event.>` gives `catalog.event.*`,
 * `facts.catalog.event.deleted` that one type; filters with `*` give every type.
 */
export type FactsOn<S extends string> = string extends S ? FactType
  : S extends `facts.${infer P}.>` ? OrAll<Extract<FactType, `${P}.${string}`>>
  : S extends `facts.${infer T}` ? OrAll<Extract<FactType, T>>
  : FactType;

/**
 * Where a new consumer starts: `"all"` (the beginning of the stream, a full replay), `"new"`
 * (facts published from now on), a `Date` (facts published since then) or a stream sequence.
 * A durable consumer that exists already resumes where it stopped, whatever this says.
 */
export type FactStart = "all" | "new" | Date | { sequence: number };

export interface FactConsumerOptions<S extends string = string> {
  /**
   * Durable consumer name: one per consuming purpose, shared by all its instances. Without one
   * the consumer is ephemeral (a replay or a one-off tool): the server forgets it once stopped.
   */
  durable?: string;
  /**
   * An ephemeral consumer's name (ignored with `durable`): one a NATS user limited to that name
   * may make and pull (a catch-up's replay, shared/fact_catch_up.ts). Default: the server names it.
   */
  name?: string;
  /**
   * Fact subject filter without the bus prefix, e.g. `facts.payments.>`. One filter only:
   * NATS 2.9 (our machines) does not know `filter_subjects`; use wildcards.
   */
  subject: S;
  handle: (facts: Fact<FactsOn<S>>[]) => Promise<void | HandleResult>;
  log: Logger;
  /** Where a new consumer starts (default `"all"`). */
  start?: FactStart;
  /** Most facts per batch (default 500). */
  batchSize?: number;
  /** How long a delivered fact not acknowledged waits before redelivery (default ACK_WAIT_MS). */
  ackWaitMs?: number;
  /**
   * How long a fact `handle` keeps failing on, while its dependencies work, keeps its turn before
   * it is parked as poison (default KEEP_TURN_MS). Transient failures never count against it.
   */
  keepTurnMs?: number;
  /**
   * How often the consumer reads its acknowledgement floor (with its lag) besides each metrics
   * scrape: where a deleted durable is made again from (default FLOOR_READ_MS).
   */
  floorReadMs?: number;
  /** How many failed attempts a fact must also have had before it is parked (default 5). */
  parkAfterAttempts?: number;
  /**
   * The service's own check of what `handle` needs, asked when `handle` fails with an error
   * `isTransientFailure` (shared/transient.ts) does not recognise: a problem it names (say,
   * `databaseProblem(sql)` answering "database unreachable") makes the failure transient, so the
   * fact is tried again for as long as it lasts instead of being parked.
   */
  dependencyProblem?: () => Promise<string | undefined>;
  /**
   * Deliver facts of types this process does not know yet (a producer deployed before it)
   * instead of skipping them, their data reduced to what is safe to read unchecked (the `id`, and
   * `event` when a string): for subscribers that must see every change whatever its type, such as
   * the audit log. Default false: skipped (acknowledged unhandled), as their data cannot be
   * checked. Either way one without a resource id, or with a malformed type, is parked.
   */
  unknownTypes?: boolean;
  /**
   * Bind to the fact stream its producers made instead of making (or reconciling) the fact and
   * parked streams: for a subscriber outside the system, which must not make streams for a prefix
   * nobody publishes on, nor set the stream's replicas to its own FACTS_REPLICAS (default 1: it
   * scaled an R3 stream down to one copy). A missing fact or parked stream fails the start
   * (without the parked one, a message to park came back every 5 s for good). Default false:
   * our services own the streams and make them at start, before or after their producers.
   */
  bindStreams?: boolean;
  /**
   * Where a durable consumer keeps its position beside what its facts change: the service's own
   * database (`keptPositions`, shared/fact_kept_position.ts). A database found behind the
   * consumer at start (restored from a backup, a failover that lost commits) gets the facts it
   * lacks handed over again before the consumer goes on (shared/fact_catch_up.ts).
   */
  keptIn?: PositionStore;
}

/** What `handle` may answer: facts that no retry can handle, parked instead of redelivered. */
export interface HandleResult {
  reject?: { id: string; reason: string }[];
}

export interface FactConsumer {
  /**
   * Finishes the batch being handed over, then stops fetching; a batch waiting to be tried again
   * (and every batch behind it) is given back to the server for redelivery, in order.
   */
  stop(): Promise<void>;
}

/** A stream its producers made (`bindStreams`); a missing one fails with its name. */
async function boundStream(bus: Bus, jsm: JetStreamManager, name: string): Promise<StreamInfo> {
  return await jsm.streams.info(name).catch((error) => {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) {
      throw error;
    }
    throw new Error(
      `Cannot bind to stream ${name}: it does not exist; the services of bus prefix ` +
        `"${bus.prefix}" make it when they start`,
      { cause: error },
    );
  });
}

/**
 * The fact stream a consumer reads, as the answer that made or checked it said (asked again right
 * away, a cluster may still say "stream not found": see openFactStream), and the parked stream
 * beside it: made and reconciled as our services do, or, bound (`bindStreams`), the producers'
 * own, both required. A bound subscriber started without the parked stream tried to park a
 * message every 5 s for good, the message coming back each time: it fails at start instead, as
 * without the fact stream (a review).
 */
async function openStreams<S extends string>(
  bus: Bus,
  jsm: JetStreamManager,
  options: FactConsumerOptions<S>,
): Promise<StreamInfo> {
  if (!options.bindStreams) {
    const info = await openFactStream(bus);
    await ensureParkedStream(bus);
    return info;
  }
  const info = await boundStream(bus, jsm, facts.stream(bus.prefix));
  await boundStream(bus, jsm, facts.parkedStream(bus.prefix));
  return info;
}

const decoder = new TextDecoder();
/** Most facts per batch, unless a consumer says otherwise. */
const DEFAULT_BATCH_SIZE = 500;
/**
 * How long the server waits for a delivered fact's acknowledgement before delivering it again.
 * Short, because a delivery can be lost with the node that sent it (a consumer leader shutting
 * down mid-delivery): the new leader counts it as delivered and sends it again only after this
 * (it was 30 s: a fact then waited 30 s after a failover, seen once in the cluster fault test,
 * where consumers must follow the stream within 2 s). Facts in hand for longer (a backlog
 * waiting its turn, a slow handler) are kept from redelivery by in-progress acknowledgements
 * (`InHand`), so a short wait costs nothing while they are handled.
 */
const ACK_WAIT_MS = 1_000;

/**
 * The fact in a message, or why it is not one: not JSON, not a CloudEvent, a type the registry
 * does not know, data that does not match its schema.
 */
function readFact(
  bus: Bus,
  msg: JsMsg,
  options: { unknownTypes?: boolean },
): { fact: Fact } | { reason: string } | { newerType: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(msg.data));
  } catch {
    return { reason: "not JSON" };
  }
  const read = parseFact(raw, options);
  const type = "fact" in read ? read.fact.type : read.unknownType;
  // A fact on a subject other than its type's was misrouted or forged: subscribers filter by
  // subject, so accepting it would show it to the wrong ones.
  if (type !== undefined && bus.subject(factSubject(type)) !== msg.subject) {
    return { reason: "its type differs from the subject it arrived on" };
  }
  if (!("fact" in read) && read.unknownType !== undefined) return { newerType: read.unknownType };
  return read;
}

/**
 * Hands each fact to the handler of its type (typed `data`); facts of other types are skipped.
 *
 * @example
 * ```ts ignore
 * handle: byType({
 *   "catalog.event.deleted": (fact) => forget(fact.data.id),
 *   "catalog.ticket.deleted": (fact) => detach(fact.data.id, fact.data.event),
 * }),
 * ```
 */
export function byType(
  handlers: { [K in FactType]?: (fact: Fact<K>) => Promise<void> | void },
): (facts: Fact[]) => Promise<void> {
  return async (batch) => {
    for (const fact of batch) {
      const handler = handlers[fact.type] as ((fact: Fact) => Promise<void> | void) | undefined;
      await handler?.(fact);
    }
  };
}

/** The JetStream deliver policy for a start point. */
function deliverFrom(start: FactStart = "all"): Partial<ConsumerConfig> {
  if (start instanceof Date) {
    return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.toISOString() };
  }
  if (typeof start === "object") {
    return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.sequence };
  }
  return { deliver_policy: start === "new" ? DeliverPolicy.New : DeliverPolicy.All };
}

export async function consumeFacts<S extends string>(
  bus: Bus,
  options: FactConsumerOptions<S>,
): Promise<FactConsumer> {
  // Refused before anything is made: an Invalid Date failed deep in the set-up, as a RangeError.
  if (options.start instanceof Date && Number.isNaN(options.start.getTime())) {
    throw new Error("Cannot consume facts: start is not a valid time");
  }
  const consumer = await startFollowing(bus, options);
  if (!options.keptIn || !options.durable) return consumer;
  return healingLosses(options, consumer, () => startFollowing(bus, options));
}

/** Opens the consumer and follows it; a database behind it catches up first. */
async function startFollowing<S extends string>(
  bus: Bus,
  options: FactConsumerOptions<S>,
): Promise<FactConsumer> {
  const opened = await openConsumer(bus, options);
  const behind = await keptBehind(opened, options);
  if (behind) return catchUpFirst(consumingOn<S>(bus), options, opened, behind);
  return (await pullFrom(bus, options, opened)).consumer;
}

/** This module's parts a catch-up uses (shared/fact_catch_up.ts). */
function consumingOn<S extends string>(bus: Bus): Consuming<S> {
  return {
    open: (options) => openConsumer(bus, options),
    pull: (options, opened, keptAs) => pullFrom(bus, options, opened, keptAs),
    startAgain: (options) => startFollowing(bus, options),
  };
}

/** A consumer that exists, as `openConsumer` made or found it. */
export interface OpenedConsumer {
  jsm: JetStreamManager;
  stream: string;
  name: string;
  floor: number;
  /**
   * The highest sequence a fact may have been settled at when it was opened: the floor when every
   * fact handed over was acknowledged, else the last handed over (others may be settled above the
   * floor, out of order). Not the last handed over always: a subject filter moves that past facts of
   * other subjects it never hands over, and a follower's kept position then looked behind at every
   * start (found by the last look: a warning and a 2.5 s wait each time).
   */
  reached: number;
  streamCreated: string;
}

/** A consumer pulling, and what it settled (`position`). */
export interface Pulling {
  consumer: FactConsumer;
  settled: () => StreamPosition;
}

/** Pulls from `opened` and hands its facts over until stopped. */
async function pullFrom<S extends string>(
  bus: Bus,
  options: FactConsumerOptions<S>,
  opened: OpenedConsumer,
  keptAs: string | undefined = options.durable,
): Promise<Pulling> {
  const { jsm, stream, name } = opened;
  // A replay counts, and reports its lag, as the durable it catches up for.
  const label = keptAs ?? name;
  const connection = await bus.jetStreamConnection();
  const js = jetstream(connection);
  // Its info, asked right after its creation, may meet the same settling (`openConsumer`).
  const consumer = await whileSettling(() => js.consumers.get(stream, name), isClusterSettling);
  const stopping = new AbortController();
  const batches: BatchContext<S> = {
    bus,
    js,
    // Asked before settling facts held for long (`fromLostStream`): not for long during an outage.
    // No account check when made: with this short timeout, a slow one (a cluster electing its
    // leader) would fail the start (a review).
    jsm: await jetstreamManager(connection, { timeout: 1_000, checkAPI: false }),
    ...startingAt(opened, options),
    options,
    handled: handledFacts(label),
    stopping: stopping.signal,
  };
  const health = new PullHealth(options.log, label);
  const keep = keptAs && options.keptIn ? keeper(batches, options.keptIn, keptAs) : () => {};
  // Kept after each batch and at each floor read (moved or not: shared/fact_kept_position.ts).
  const unwatch = watchLag(jsm, batches, { label, floorRead: keep });
  const inHand = new InHand(options.ackWaitMs ?? ACK_WAIT_MS);
  const pulling = pullForever(bus, {
    consumer,
    health,
    inHand,
    batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
    received: (msg) => noteDelivery(batches, msg),
    handleBatch: async (messages) => {
      await handleBatchSafely(batches, messages);
      keep();
    },
    // An ephemeral consumer goes after 30 s without this process (a NATS outage, a network
    // cut); a durable one when someone deletes it. Either way it is made again: a durable one
    // left deleted stalled its service's facts for good.
    remake: () => remakeIfGone(jsm, batches),
  });
  const stop = async () => {
    unwatch();
    stopping.abort();
    await pulling.stop();
    inHand.stop();
    if (keptAs && options.keptIn) {
      // The floor as it stands now: a restart then finds the database up to date (not behind).
      await readFloor(batches).catch(() => {});
      keep();
      await options.keptIn.flush();
    }
  };
  return { consumer: { stop }, settled: () => batches.position };
}

/** What a batch context of `opened` starts with: where it stands, nothing arrived yet. */
function startingAt<S extends string>(opened: OpenedConsumer, options: FactConsumerOptions<S>) {
  const { stream, name, floor, streamCreated } = opened;
  return {
    stream,
    name,
    position: new StreamPosition(floor, { shared: options.durable !== undefined }),
    streamCreated,
    streamCheckedAt: 0,
    arrivals: 0,
    skippedTypes: new Set<string>(),
    streamCheckedUpTo: 0,
  };
}

/** Notes where the consumer stands in the service's database (`keptIn`), under `consumer`. */
function keeper<S extends string>(
  ctx: BatchContext<S>,
  store: PositionStore,
  consumer: string,
): () => void {
  return () => {
    const { position, streamCreated: stream } = ctx;
    store.note(consumer, {
      stream,
      highest: position.highestSettled,
      resumeAt: position.settledBefore(),
    });
  };
}

/** The JetStream configuration of the consumer `options` describe. */
function consumerConfig<S extends string>(
  bus: Bus,
  options: FactConsumerOptions<S>,
): Partial<ConsumerConfig> {
  return {
    durable_name: options.durable,
    ack_policy: AckPolicy.Explicit,
    ...deliverFrom(options.start),
    filter_subject: bus.subject(options.subject),
    ack_wait: (options.ackWaitMs ?? ACK_WAIT_MS) * 1e6,
    // The back-pressure: the server sends no more while this many are unacknowledged, so every
    // fact delivered is in hand (`InHand`: kept alive), never waiting unseen in a buffer.
    max_ack_pending: 2 * (options.batchSize ?? DEFAULT_BATCH_SIZE),
    // An ephemeral consumer is removed by the server soon after its subscriber goes.
    ...(options.durable ? {} : { name: options.name, inactive_threshold: 30 * 1e9 }),
  };
}

/**
 * Makes sure the fact and parked streams exist and creates the consumer; a durable one that
 * exists already gets the filter, ack wait and back-pressure `options` say, and resumes where it
 * stopped.
 */
async function openConsumer<S extends string>(
  bus: Bus,
  options: FactConsumerOptions<S>,
): Promise<OpenedConsumer> {
  // Its check of the account (a request the meta leader answers) is as patient as the rest.
  const jsm = await whileSettling(
    async () => jetstreamManager(await bus.jetStreamConnection()),
    isClusterSettling,
  );
  const { config, created: streamCreated } = await openStreams(bus, jsm, options);
  const stream = config.name;
  warnOfSkippedRedeliveries(bus, config.num_replicas, options.log);
  // Right after a stream is made or scaled, or while the cluster elects its meta leader, the
  // consumer's creation may be answered "stream not found", "temporarily unavailable" or not at
  // all: asked again for a while, as the streams were, rather than failing the service's start
  // (`isClusterSettling`; a refusal fails it at once). A durable asked again after a timeout that
  // made it is found as made; an ephemeral one made so is never pulled from and goes after its
  // inactive threshold.
  const { name, floor, reached } = await whileSettling(
    () => addConsumer(jsm, stream, consumerConfig(bus, options), options),
    isClusterSettling,
  );
  return { jsm, stream, name, floor, reached, streamCreated };
}

/**
 * Creates the consumer, or gives a durable one that exists already the filter, ack wait and
 * back-pressure of `config`; returns its name and where it starts (the last fact before it, for
 * `start: "new"` or a time), should the server remove it before it has handled any
 * (`remakeIfGone`).
 */
async function addConsumer<S extends string>(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig>,
  options: FactConsumerOptions<S>,
): Promise<{ name: string; floor: number; reached: number }> {
  return await jsm.consumers.add(stream, config).then(
    (info) => ({
      name: info.name,
      floor: options.durable ? sharedFloor(info) : info.delivered.stream_seq,
      reached: reachedBy(info),
    }),
    async (error) => {
      // Not made because the cluster is settling: updating it would fail as "consumer not found".
      if (!options.durable || isClusterSettling(error)) throw error;
      const info = await jsm.consumers.update(stream, options.durable, {
        filter_subject: config.filter_subject,
        ack_wait: config.ack_wait,
        max_ack_pending: config.max_ack_pending,
      });
      // An existing durable resumes where it stood; made again, past what every instance settled.
      return {
        name: options.durable,
        floor: sharedFloor(info),
        reached: reachedBy(info),
      };
    },
  );
}

/** Where a consumer's settled facts may reach (`OpenedConsumer.reached`). */
function reachedBy(info: ConsumerInfo): number {
  return info.num_ack_pending === 0 ? sharedFloor(info) : info.delivered.stream_seq;
}

/**
 * The last sequence every instance of a durable consumer settled, from its info: where it starts
 * while it has delivered nothing, else its acknowledgement floor. Never its delivered sequence:
 * a durable that exists already with this very configuration is added without an error, and the
 * facts it delivered may be in another instance's hand, unsettled (taken as the floor, a remake
 * once started past them, and they were lost: a review). nats-server 2.9 reports a floor of 0
 * until the first acknowledgement: a remake then replays from the start, which loses nothing.
 */
function sharedFloor(info: ConsumerInfo): number {
  return info.delivered.consumer_seq === 0 ? info.delivered.stream_seq : info.ack_floor.stream_seq;
}

/**
 * Makes a consumer again, under its name, when the server removed it (an ephemeral one after its
 * inactive threshold: this process was cut off from NATS for longer; a durable one someone
 * deleted), from the first fact it has not settled (`StreamPosition`); undefined while it exists
 * or when that cannot be told. Instances of a durable one race to make it: the first wins, the
 * others find it there (or fail to add theirs, and find it at the next check), and their pulls,
 * which name it, take from it again.
 */
async function remakeIfGone<S extends string>(
  jsm: JetStreamManager,
  ctx: BatchContext<S>,
): Promise<Consumer | undefined> {
  // Only the server saying "not found" counts: any other failure (NATS away, a timeout) says
  // nothing, and the next stalled check asks again. The stream may be gone with the consumer (a
  // lost JetStream store: NATS started again on an empty volume).
  const gone = await jsm.consumers.info(ctx.stream, ctx.name).then(
    () => false,
    (error) =>
      error instanceof JetStreamApiError &&
      (error.code === JetStreamApiCodes.ConsumerNotFound ||
        error.code === JetStreamApiCodes.StreamNotFound),
  );
  if (!gone) return undefined;
  // Made again as at start (a publisher's relay may have made the stream first). A stream made
  // anew holds only facts published since, numbered from 1 again: the position in the old one
  // means nothing there (resumed at it, the new stream's first facts were skipped; and with the
  // stream gone, the consumer was never made again and stalled for good: a review).
  const { created } = await openStreams(ctx.bus, jsm, ctx.options);
  if (created !== ctx.streamCreated) {
    ctx.options.log.warn("the fact stream was made anew; following it from its start", {
      durable: ctx.name,
    });
    followNewStream(ctx, created);
  }
  const from = ctx.position.resumeAt();
  // Patient as at start (`openConsumer`): the stream may have just been made again.
  await whileSettling(() =>
    jsm.consumers.add(ctx.stream, {
      ...consumerConfig(ctx.bus, ctx.options),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
      opt_start_time: undefined,
      name: ctx.name,
    }), isClusterSettling);
  ctx.position.remade(from);
  ctx.options.log.warn("fact consumer was removed by the server; made again", {
    durable: ctx.name,
    fromSequence: from,
  });
  return await whileSettling(() => ctx.js.consumers.get(ctx.stream, ctx.name), isClusterSettling);
}

/** Handles one batch: parks what is not a fact, hands the rest over in their turn. */
async function handleBatch<S extends string>(
  ctx: BatchContext<S>,
  messages: JsMsg[],
): Promise<void> {
  const batch: Delivered[] = [];
  for (const msg of messages) {
    const read = readFact(ctx.bus, msg, ctx.options);
    if ("fact" in read) batch.push({ msg, fact: read.fact });
    else if ("newerType" in read) await skipNewerType(ctx, msg, read.newerType);
    else await park(ctx, msg, read.reason);
  }
  if (batch.length) await handleInTurn(ctx, batch);
}

/**
 * Acknowledges a fact of a type this process does not know, unhandled, and says so once per type:
 * a producer deployed after this subscriber publishes it (a new type, or a new version of one,
 * which the README's rules have it publish beside the old one). Until 2026-12-04 it was parked:
 * each older subscriber kept a copy of every such fact for good, and a warning for each.
 */
async function skipNewerType<S extends string>(
  ctx: BatchContext<S>,
  msg: JsMsg,
  type: string,
): Promise<void> {
  if (!ctx.skippedTypes.has(type)) {
    ctx.skippedTypes.add(type);
    ctx.options.log.info("skipping facts of a type this process does not know", {
      type,
      consumer: ctx.name,
    });
  }
  // A fact of a lost stream is gone with it: acknowledged, it would settle the new one's.
  if (!(await fromLostStream(ctx, [msg])).has(msg)) msg.ack();
  positionOf(ctx, msg).settled(msg.info.streamSequence);
  ctx.handled.skipped.add(1);
}
/**
 * `handleBatch`, which must not throw: the pull loop chains batches, and one rejected batch
 * would leave the chain rejected (every later batch skipped) and end the process unhandled.
 * Whatever went wrong, the batch's unacknowledged messages come back later.
 */
async function handleBatchSafely<S extends string>(
  ctx: BatchContext<S>,
  messages: JsMsg[],
): Promise<void> {
  try {
    await handleBatch(ctx, messages);
  } catch (error) {
    ctx.options.log.error("cannot handle facts; they will be redelivered", {
      error,
      count: messages.length,
    });
    for (const msg of messages) msg.nak(PARK_RETRY_MS);
    ctx.handled.retried.add(messages.length);
  }
}

const lag = metrics.gauge(
  "oe_fact_consumer_lag",
  "Facts in the stream that this consumer has not yet handled (not delivered, or delivered " +
    "and not acknowledged), per durable consumer; every instance reports the shared figure",
  ["durable"],
);

/**
 * How often a consumer reads its acknowledgement floor besides the scrapes. Read only at start
 * and at scrapes, a durable deleted where nothing scraped was made again from the floor it had at
 * start: all it had handled since was handed over again (a review: from sequence 1 every time).
 */
const FLOOR_READ_MS = 30_000;

/**
 * Reads the consumer's lag from JetStream before each metrics snapshot and every
 * `floorReadMs`, and with it the acknowledgement floor a durable consumer made again resumes
 * from; returns how to stop.
 */
function watchLag<S extends string>(
  jsm: JetStreamManager,
  ctx: BatchContext<S>,
  { label, floorRead }: { label: string; floorRead: () => void },
): () => void {
  const series = lag.series(label);
  const read = async () => {
    series.set(await readFloor(ctx, jsm));
    floorRead();
  };
  const every = ctx.options.floorReadMs ??
    (ctx.options.keptIn ? KEPT_EVERY_MS : FLOOR_READ_MS);
  const timer = setInterval(
    () => read().catch(() => {}), // gone or NATS away: the stalled pull deals with it
    every,
  );
  Deno.unrefTimer(timer);
  const uncollect = metrics.collect("fact_consumer_lag", read);
  return () => {
    clearInterval(timer);
    uncollect();
  };
}

/**
 * Reads the consumer's acknowledgement floor into its position (where a durable made again
 * resumes, and a kept position's replay starts); returns its lag.
 */
async function readFloor<S extends string>(
  ctx: BatchContext<S>,
  jsm: JetStreamManager = ctx.jsm,
): Promise<number> {
  // The position the floor belongs to: a stream made anew meanwhile has a position of its own.
  const position = ctx.position;
  const info = await jsm.consumers.info(ctx.stream, ctx.name);
  // nats-server 2.9 reports a floor of 0 until the first acknowledgement: a durable that never
  // handed a fact over stands where it started (a review: its kept position stayed at 1, and
  // every start took the database for behind).
  position.acknowledgedUpTo(ctx.options.durable ? sharedFloor(info) : info.ack_floor.stream_seq);
  return info.num_pending + info.num_ack_pending;
}
