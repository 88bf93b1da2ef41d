/**
 * Consuming facts: a durable JetStream consumer (survives restarts, shared by every instance of
 * the consuming service) that hands valid facts to `handle` in batches and acknowledges them
 * only after `handle` returns, one batch after another: a batch `handle` throws on is handed over
 * again, in place, after growing pauses, and the facts behind it wait (`handOverInTurn`).
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
 * handle (say, values its database refuses): those are parked too and the rest are acked.
 *
 * `data` is typed by the subject filter (`facts.payments.>` hands over payments' facts) and
 * checked against the registry's schema (shared/fact_catalog.ts); `byType` dispatches by fact
 * type with each handler's `data` typed. `start` chooses where a new consumer begins: the whole
 * stream (default, a replay), a point in time, or new facts only. The pull loop under it (renewing
 * a silent pull, batching, keeping facts in hand from redelivery) is shared/fact_pull.ts.
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
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { headers, type MsgHdrs } from "@nats-io/nats-core";
import type { Bus } from "./bus.ts";
import type { FactType } from "./fact_catalog.ts";
import { factSubject } from "./fact_names.ts";
import { ensureFactStream, type Fact, parseFact } from "./facts.ts";
import { facts } from "./subjects.ts";
import { type LogFields, type Logger, scrub } from "./log.ts";
import { ensureStream } from "./facts.ts";
import { startBatchSpans } from "./fact_telemetry.ts";
import { metrics } from "./metrics.ts";
import { tracing, withContext } from "./telemetry.ts";
import { isTransientFailure } from "./transient.ts";
import { InHand, pullForever, PullHealth } from "./fact_pull.ts";
import { StreamPosition } from "./fact_position.ts";

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
 * (facts published from now on), or a `Date` (facts published since then). A durable consumer
 * that exists already resumes where it stopped, whatever this says.
 */
export type FactStart = "all" | "new" | Date;

export interface FactConsumerOptions<S extends string = string> {
  /**
   * Durable consumer name: one per consuming purpose, shared by all its instances. Without one
   * the consumer is ephemeral (a replay or a one-off tool): the server forgets it once stopped.
   */
  durable?: string;
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

async function ensureParkedStream(bus: Bus): Promise<void> {
  await ensureStream(bus, {
    name: facts.parkedStream(bus.prefix),
    subjects: [bus.subject(facts.parked)],
    num_replicas: bus.factsReplicas,
  });
}

const decoder = new TextDecoder();
/** How long a message that could not be parked waits before it is delivered again. */
const PARK_RETRY_MS = 5_000;
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
  const { jsm, stream, name, floor, streamCreated } = await openConsumer(bus, options);
  const js = jetstream(bus.nc);
  const consumer = await js.consumers.get(stream, name);
  const stopping = new AbortController();
  const batches: BatchContext<S> = {
    bus,
    js,
    // Asked before settling facts held for long (`fromLostStream`): not for long during an outage.
    // No account check when made: with this short timeout, a slow one (a cluster electing its
    // leader) would fail the start (a review).
    jsm: await jetstreamManager(bus.nc, { timeout: 1_000, checkAPI: false }),
    stream,
    name,
    options,
    handled: handledFacts(name),
    stopping: stopping.signal,
    position: new StreamPosition(floor, { shared: options.durable !== undefined }),
    streamCreated,
    streamCheckedAt: 0,
    arrivals: 0,
    skippedTypes: new Set(),
    streamCheckedUpTo: 0,
  };
  const health = new PullHealth(options.log, name);
  const unwatch = watchLag(jsm, batches);
  const inHand = new InHand(options.ackWaitMs ?? ACK_WAIT_MS);
  const pulling = pullForever(bus, {
    consumer,
    health,
    inHand,
    batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
    received: (msg) => noteDelivery(batches, msg),
    handleBatch: (messages) => handleBatchSafely(batches, messages),
    // An ephemeral consumer goes after 30 s without this process (a NATS outage, a network
    // cut); a durable one when someone deletes it. Either way it is made again: a durable one
    // left deleted stalled its service's facts for good.
    remake: () => remakeIfGone(jsm, batches),
  });
  return {
    async stop() {
      unwatch();
      stopping.abort();
      await pulling.stop();
      inHand.stop();
    },
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
    ...(options.durable ? {} : { inactive_threshold: 30 * 1e9 }),
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
): Promise<
  { jsm: JetStreamManager; stream: string; name: string; floor: number; streamCreated: string }
> {
  const stream = await ensureFactStream(bus);
  await ensureParkedStream(bus);
  const jsm = await jetstreamManager(bus.nc);
  const streamCreated = (await jsm.streams.info(stream)).created;
  const config = consumerConfig(bus, options);
  // Where it starts (the last fact before it, for `start: "new"` or a time), should the server
  // remove it before it has handled any (`remakeIfGone`).
  const { name, floor } = await jsm.consumers.add(stream, config).then(
    (info) => ({
      name: info.name,
      floor: options.durable ? sharedFloor(info) : info.delivered.stream_seq,
    }),
    async (error) => {
      if (!options.durable) throw error;
      const info = await jsm.consumers.update(stream, options.durable, {
        filter_subject: config.filter_subject,
        ack_wait: config.ack_wait,
        max_ack_pending: config.max_ack_pending,
      });
      // An existing durable resumes where it stood; made again, past what every instance settled.
      return { name: options.durable, floor: sharedFloor(info) };
    },
  );
  return { jsm, stream, name, floor, streamCreated };
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
  await ensureFactStream(ctx.bus);
  await ensureParkedStream(ctx.bus);
  const { created } = await jsm.streams.info(ctx.stream);
  if (created !== ctx.streamCreated) {
    ctx.options.log.warn("the fact stream was made anew; following it from its start", {
      durable: ctx.name,
    });
    followNewStream(ctx, created);
  }
  const from = ctx.position.resumeAt();
  await jsm.consumers.add(ctx.stream, {
    ...consumerConfig(ctx.bus, ctx.options),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: from,
    opt_start_time: undefined,
    name: ctx.name,
  });
  ctx.position.remade(from);
  ctx.options.log.warn("fact consumer was removed by the server; made again", {
    durable: ctx.name,
    fromSequence: from,
  });
  return await ctx.js.consumers.get(ctx.stream, ctx.name);
}

/** What handling a batch needs: where to park, whom to hand facts to, what to count. */
interface BatchContext<S extends string> {
  bus: Bus;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  /** The consumer's name (its durable name, or the server's name for an ephemeral one). */
  name: string;
  options: FactConsumerOptions<S>;
  handled: ReturnType<typeof handledFacts>;
  /** Aborted when the consumer stops: a batch being retried gives up its turn. */
  stopping: AbortSignal;
  /**
   * What was settled, for a consumer made again (`remakeIfGone`); a new one when the stream
   * was made anew (its messages are settled in the position of the stream they came from).
   */
  position: StreamPosition;
  /** When the stream this consumer follows was made: another time is another stream. */
  streamCreated: string;
  /**
   * When `fromLostStream` last found the stream to be `streamCreated` (its question sent), or
   * could not read it (its answer given up).
   */
  streamCheckedAt: number;
  /** How many messages arrived so far (`noteDelivery` numbers each). */
  arrivals: number;
  /** How many had arrived at `streamCheckedAt`: the messages that read covers. */
  streamCheckedUpTo: number;
  /** Types of facts skipped as unknown so far (each is logged once). */
  skippedTypes: Set<string>;
}

/**
 * What the consumer stood on when each message arrived (`noteDelivery`): its number in the order
 * of arrival, the position it counts in, and the stream (its `created`) followed then.
 */
const deliveries = new WeakMap<
  JsMsg,
  { arrival: number; position: StreamPosition; streamCreated: string }
>();

/**
 * Notes what the consumer stands on as `msg` arrives. Noted when its batch was handed over
 * instead, a fact of a lost stream that waited behind a batch which found the stream made anew
 * was taken for the new stream's, and its acknowledgement settled the new stream's fact at that
 * sequence, held by another instance (a CI run: that fact was never delivered again).
 */
function noteDelivery<S extends string>(ctx: BatchContext<S>, msg: JsMsg): void {
  deliveries.set(msg, {
    arrival: ++ctx.arrivals,
    position: ctx.position,
    streamCreated: ctx.streamCreated,
  });
  ctx.position.delivered(msg.info.streamSequence, msg.info.deliverySequence);
}

function positionOf<S extends string>(ctx: BatchContext<S>, msg: JsMsg): StreamPosition {
  return deliveries.get(msg)?.position ?? ctx.position;
}

/**
 * Whether a recent read of the stream was asked after each of `msgs` arrived: asked once per fact
 * instead, a batch handed over one fact at a time (or rejecting many) waited a round trip per
 * fact, and a second per fact while NATS was away (a review).
 */
function checkedSinceArrival<S extends string>(ctx: BatchContext<S>, msgs: JsMsg[]): boolean {
  const newest = Math.max(...msgs.map((msg) => deliveries.get(msg)?.arrival ?? Infinity));
  return newest <= ctx.streamCheckedUpTo &&
    Date.now() - ctx.streamCheckedAt < LOST_STREAM_CHECK_MS;
}

/**
 * Follows a stream made anew (`created`): from its start, with a position of its own; the
 * messages of the lost one keep theirs.
 */
function followNewStream<S extends string>(ctx: BatchContext<S>, created: string): void {
  ctx.streamCreated = created;
  ctx.position = new StreamPosition(0, { shared: ctx.options.durable !== undefined });
}

/**
 * How long a read of the stream (`fromLostStream`) stands for the messages that had arrived when
 * it was asked: facts settled one at a time, or parked one by one, do not each wait a round trip.
 */
const LOST_STREAM_CHECK_MS = 250;

/**
 * The messages that came from a stream lost (and made again) since they were delivered: they
 * must never be acknowledged or terminated. An acknowledgement names only the stream, the durable
 * and a sequence, so the server takes it for the new stream's fact at that sequence: delivered to
 * another instance, not yet handled, it was then never delivered again should that instance crash
 * or stop (found by a review: the new stream's first facts were skipped for good). Not settled,
 * such a message is simply gone with its stream. This instance made the durable again itself when
 * its position changed; another instance did when the stream's `created` differs from the one
 * followed at delivery (read after each message arrived; unreadable, they are settled as before).
 * This instance then follows the new stream from its start, should it make the durable again (a
 * replay, never a skip). Until 2026-12-03 the stream was read only for messages held 250 ms or
 * more: a fact settled sooner was acknowledged unchecked, while an instance starting meanwhile
 * makes the durable on a stream made anew at once, with no stall to wait out, and the fact at
 * that sequence in its hand was settled (a review: 40-70 ms from deletion to the new fact in the
 * other's hand; it was never delivered again once that instance crashed).
 */
async function fromLostStream<S extends string>(
  ctx: BatchContext<S>,
  msgs: JsMsg[],
): Promise<Set<JsMsg>> {
  const lost = new Set(msgs.filter((msg) => positionOf(ctx, msg) !== ctx.position));
  if (checkedSinceArrival(ctx, msgs)) return lost;
  const asked = { at: Date.now(), upTo: ctx.arrivals };
  const created = await ctx.jsm.streams.info(ctx.stream).then(
    (info) => info.created,
    () => undefined,
  );
  // Once it could not be read, facts are settled as before for as long.
  const read = created === undefined ? { at: Date.now(), upTo: ctx.arrivals } : asked;
  ctx.streamCheckedAt = read.at;
  ctx.streamCheckedUpTo = read.upTo;
  if (created === undefined) return lost;
  for (const msg of msgs) {
    const delivered = deliveries.get(msg);
    if (delivered && delivered.streamCreated !== created) lost.add(msg);
  }
  if (created !== ctx.streamCreated) {
    ctx.options.log.warn("the fact stream was made anew; facts of the lost one are not settled", {
      durable: ctx.name,
      count: lost.size,
    });
    followNewStream(ctx, created);
  }
  return lost;
}

/**
 * A message's headers, or none when nats.js cannot read them (a name with a space, which the
 * server carries as it is; nats.js reads them only when asked, and throws): read unguarded, such
 * a message could never be parked (it came back every 5 s for good), and with tracing on a valid
 * fact failed every attempt and then its parking, in place, for good (a review).
 */
function headersOf(msg: JsMsg): MsgHdrs | undefined {
  try {
    return msg.headers;
  } catch {
    return undefined;
  }
}

/**
 * The parked copy's headers: the original's when readable (CloudEvents attributes, trace
 * context), plus why and by whom it was parked, so people reading the parked stream need not
 * search the logs. The reason is scrubbed and kept to one line (a header cannot hold a line
 * break). JetStream's own `Nats-*` headers stay behind: the original's message id or
 * expectations would make the parked stream refuse or drop the copy.
 */
function parkedHeaders(msg: JsMsg, consumer: string, reason: string): MsgHdrs {
  const h = headers();
  for (const [key, values] of headersOf(msg) ?? []) {
    if (key.toLowerCase().startsWith("nats-")) continue;
    for (const value of values) h.append(key, value);
  }
  h.set("Oe-Parked-By", consumer);
  h.set("Oe-Parked-Reason", scrub(reason).replaceAll(/\s+/g, " ").slice(0, 500));
  return h;
}

/**
 * Copies a message to the parked stream (`<prefix>.parked.<its subject>`) and terminates it:
 * kept for people, never retried. False, logged with `then` (what happens next), when the parked
 * stream does not take it (no leader for a moment, removed by hand, NATS gone). The copy's
 * message id is the original's stream sequence and stored time, and the consumer's name: parked
 * again after a redelivery it is not copied twice, and each consumer that parks a fact leaves its
 * own copy (one id for all once kept only the first consumer's, and its reason). The sequence
 * alone was taken, in a stream made again (numbered from 1 again), for a copy made before: the
 * fact was dropped by the parked stream and terminated (a review).
 */
async function tryPark<S extends string>(
  ctx: BatchContext<S>,
  msg: JsMsg,
  options: { reason: string; then: string; quiet?: boolean },
): Promise<boolean> {
  const target = ctx.bus.subject(`parked.${msg.subject}`);
  try {
    await ctx.js.publish(target, msg.data, {
      msgID: `${msg.info.streamSequence}.${msg.info.timestampNanos}@${ctx.stream}/${ctx.name}`,
      headers: parkedHeaders(msg, ctx.name, options.reason),
    });
  } catch (error) {
    if (options.quiet) return false;
    ctx.options.log.error(`cannot park a message; ${options.then}`, {
      subject: msg.subject,
      sequence: msg.info.streamSequence,
      reason: options.reason,
      error,
    });
    return false;
  }
  // A fact of a lost stream is gone with it: terminated, it would settle the new one's.
  if (!(await fromLostStream(ctx, [msg])).has(msg)) msg.term();
  positionOf(ctx, msg).settled(msg.info.streamSequence);
  ctx.handled.parked.add(1);
  return true;
}

/**
 * Parks a message that is not a fact, or a fact `handle` rejected. When the parked stream does
 * not take it, the message is redelivered later instead and the facts behind it go on: a failed
 * park once rejected the pull's promise chain, and the unhandled rejection ended the whole
 * process (a review: audit and discounts both died).
 */
async function park<S extends string>(
  ctx: BatchContext<S>,
  msg: JsMsg,
  reason: string,
): Promise<void> {
  if (await tryPark(ctx, msg, { reason, then: "it will be redelivered" })) {
    ctx.options.log.warn("parked a message", {
      reason,
      subject: msg.subject,
      sequence: msg.info.streamSequence,
    });
    return;
  }
  msg.nak(PARK_RETRY_MS);
  ctx.handled.retried.add(1);
}

/** Hands facts to `handle`, in the batch's spans when tracing (shared/fact_telemetry.ts). */
async function handOver<S extends string>(
  ctx: BatchContext<S>,
  batch: Delivered[],
): Promise<void | HandleResult> {
  // The subject filter delivers only the types FactsOn<S> names (readFact checked it).
  const facts = batch.map((b) => b.fact) as Fact<FactsOn<S>>[];
  if (!tracing) return await ctx.options.handle(facts);
  const spans = startBatchSpans(
    ctx.name,
    batch.map(({ msg, fact }) => ({ id: fact.id, type: fact.type, headers: headersOf(msg) })),
  );
  try {
    const result = await withContext(spans.ctx, () => ctx.options.handle(facts));
    spans.end(new Set(result?.reject?.map((r) => r.id)));
    return result;
  } catch (error) {
    spans.end("all", error);
    throw error;
  }
}

/** A fact as delivered: its message, to settle, and what it says. */
interface Delivered {
  msg: JsMsg;
  fact: Fact;
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
 * Hands `batch` over until `handle` succeeds, then acks it (parking what `handle` rejected);
 * false when it was given back instead, because the consumer stops. A batch of several facts
 * that fails otherwise than transiently is handed over again one fact at a time: the fact it
 * fails on is found, and the facts before it are not held back with it. A single fact that keeps
 * failing so is parked as poison.
 */
async function handleInTurn<S extends string>(
  ctx: BatchContext<S>,
  batch: Delivered[],
): Promise<boolean> {
  const single = batch.length === 1;
  const turn = await handOverInTurn(ctx, batch, single ? poisonBound(ctx.options) : AT_ONCE);
  if (turn === GIVEN_BACK) {
    giveBack(batch);
    return false;
  }
  if ("failing" in turn) {
    if (single) return await parkPoison(ctx, batch[0], turn.failing);
    return await handleOneByOne(ctx, batch);
  }
  await settle(ctx, batch, turn.result);
  return true;
}

/** `handleInTurn` for each fact in order; a fact given back gives back those after it too. */
async function handleOneByOne<S extends string>(
  ctx: BatchContext<S>,
  batch: Delivered[],
): Promise<boolean> {
  ctx.options.log.warn("cannot handle a batch of facts; handing them over one at a time", {
    durable: ctx.name,
    ...describeBatch(batch),
  });
  for (let i = 0; i < batch.length; i++) {
    if (await handleInTurn(ctx, [batch[i]])) continue;
    giveBack(batch.slice(i + 1));
    return false;
  }
  return true;
}

/** Acks what `handle` handled and parks what it rejected. */
async function settle<S extends string>(
  ctx: BatchContext<S>,
  batch: Delivered[],
  result: void | HandleResult,
): Promise<void> {
  const rejected = new Map(result?.reject?.map((r) => [r.id, r.reason]));
  const lost = await fromLostStream(ctx, batch.map(({ msg }) => msg));
  for (const { msg, fact } of batch) {
    const reason = rejected.get(fact.id);
    if (reason === undefined) {
      if (!lost.has(msg)) msg.ack();
      positionOf(ctx, msg).settled(msg.info.streamSequence);
    } else await park(ctx, msg, `rejected by the handler: ${reason}`);
  }
  ctx.handled.acked.add(batch.length - rejected.size);
}

/** Hands facts back to the server, redelivered a second later (after what follows them). */
function giveBack(batch: Delivered[]): void {
  for (const { msg } of batch) msg.nak(1000);
}

/** A batch handed back to the server for redelivery (naked), unhandled. */
const GIVEN_BACK = Symbol("given back");
/**
 * Pauses between attempts at a batch that failed, then the last one again: no longer than the
 * redelivery that came 1 s later before, so a consumer heals as fast after an outage.
 */
const RETRY_PAUSES_MS = [250, 500, 1000];
/** A batch failing for long logs its first failure, then one line this often. */
const RETRY_LOG_EVERY_MS = 10_000;
/**
 * How long a fact `handle` keeps failing on while its dependencies work keeps its turn, and how
 * many attempts it must have had (both): a failure of that fact alone that heals (a conflict with
 * a concurrent change, a moment without a dependency nobody recognised) is over well within it.
 * One that lasts is a fact the handler cannot handle (a bug, data it can never take), and the
 * facts behind it must not wait for good: it is parked. The attempts keep a slow handler (a few
 * long tries) from being parked on its first failures.
 */
const KEEP_TURN_MS = 30_000;
const PARK_AFTER_ATTEMPTS = 5;

/** After how many failed attempts, over how long, a failure that is not transient gives up. */
interface Bound {
  attempts: number;
  ms: number;
}
/** A batch of several facts gives up at once: its facts are then handed over one at a time. */
const AT_ONCE: Bound = { attempts: 1, ms: 0 };

function poisonBound(
  options: Pick<FactConsumerOptions, "parkAfterAttempts" | "keepTurnMs">,
): Bound {
  return {
    attempts: options.parkAfterAttempts ?? PARK_AFTER_ATTEMPTS,
    ms: options.keepTurnMs ?? KEEP_TURN_MS,
  };
}

/** Failures of a batch that were not transient: the last, how many, since when. */
interface Failing {
  error: unknown;
  attempts: number;
  since: number;
}

/**
 * Hands the batch over until `handle` succeeds, pausing longer after each failure. A transient
 * failure (`transientReason`: the database or the bus gone, a lock wait run out) is retried for
 * as long as it lasts: the facts are not parked for a fault of the world, nor given back, which
 * would let the facts behind them go first. Any other failure is retried until `bound`, then
 * reported (`failing`). Retried here, in place, the batch keeps its turn: batches are handled one
 * after another, so the facts behind it wait, and the facts in hand are kept from redelivery
 * (`InHand`). Naked at once instead, it came back after facts that followed it (found by a
 * review: an event's deletion, retried after the event's restore and a new Stripe link, removed
 * the link). A stopping consumer hands nothing over (GIVEN_BACK): the batches queued behind a
 * given-back one are given back too.
 */
async function handOverInTurn<S extends string>(
  ctx: BatchContext<S>,
  batch: Delivered[],
  bound: Bound,
): Promise<{ result: void | HandleResult } | { failing: Failing } | typeof GIVEN_BACK> {
  const failing: Failing = { error: undefined, attempts: 0, since: 0 };
  const logRetry = retryLogger(ctx, batch);
  for (let attempt = 0; !ctx.stopping.aborted; attempt++) {
    try {
      return { result: await handOver(ctx, batch) };
    } catch (error) {
      const transient = await transientReason(ctx, error);
      if (transient === undefined && reachedBound(failing, error, bound)) return { failing };
      if (attempt === 0) countRetried(ctx, batch);
      const pauseMs = RETRY_PAUSES_MS[Math.min(attempt, RETRY_PAUSES_MS.length - 1)];
      logRetry(error, { attempt: attempt + 1, pauseMs, transient });
      if (!await pause(pauseMs, ctx.stopping)) return GIVEN_BACK;
    }
  }
  return GIVEN_BACK;
}

/** Deliveries already counted as retried: a batch split after a retry counts its facts again. */
const countedRetried = new WeakSet<JsMsg>();

/**
 * Counts the batch's facts as retried, each once per delivery (the metric counts facts, not
 * attempts, nor the batches a split hands over again).
 */
function countRetried<S extends string>(ctx: BatchContext<S>, batch: Delivered[]): void {
  const fresh = batch.filter(({ msg }) => !countedRetried.has(msg));
  for (const { msg } of fresh) countedRetried.add(msg);
  if (fresh.length) ctx.handled.retried.add(fresh.length);
}

/** Counts a failure that is not transient; true once `bound` is reached. */
function reachedBound(failing: Failing, error: unknown, bound: Bound): boolean {
  failing.error = error;
  failing.attempts++;
  failing.since ||= Date.now();
  return failing.attempts >= bound.attempts && Date.now() - failing.since >= bound.ms;
}

/**
 * Why a failure is transient, or undefined when it is not: an error that says so
 * (shared/transient.ts), else what the service's own check of its dependencies reports. A check
 * that fails itself counts as a problem: a fact is never parked on a doubt about the world.
 */
async function transientReason<S extends string>(
  ctx: BatchContext<S>,
  error: unknown,
): Promise<string | undefined> {
  if (isTransientFailure(error)) {
    return "a dependency is unavailable or not as deployed code expects";
  }
  const check = ctx.options.dependencyProblem;
  if (!check) return undefined;
  try {
    return await check();
  } catch {
    return "the dependency check failed";
  }
}

/** Logs a batch's failed attempts: the first, then one every RETRY_LOG_EVERY_MS at most. */
function retryLogger<S extends string>(ctx: BatchContext<S>, batch: Delivered[]) {
  let last = -Infinity;
  return (error: unknown, fields: LogFields) => {
    if (Date.now() - last < RETRY_LOG_EVERY_MS) return;
    last = Date.now();
    ctx.options.log.error("cannot handle facts; trying again", {
      durable: ctx.name,
      ...describeBatch(batch),
      ...fields,
      error,
    });
  };
}

/** A fact in a log line: never its data, which may name people. */
function factFields({ msg, fact }: Delivered): LogFields {
  return { id: fact.id, type: fact.type, subject: msg.subject, sequence: msg.info.streamSequence };
}

/** A batch in a log line: its fact when alone, else how many and their stream sequences. */
function describeBatch(batch: Delivered[]): LogFields {
  if (batch.length === 1) return factFields(batch[0]);
  const sequences = `${batch[0].msg.info.streamSequence}-${batch.at(-1)!.msg.info.streamSequence}`;
  return { count: batch.length, sequences };
}

/**
 * Parks a fact `handle` kept failing on while its dependencies worked, so the facts behind it go
 * on; logged at error level and counted (`oe_facts_poisoned`). It keeps its turn until the
 * parked stream takes it (given back to the server, a second later, the facts behind it would
 * overtake it); false, and given back, if the consumer stops first.
 */
async function parkPoison<S extends string>(
  ctx: BatchContext<S>,
  item: Delivered,
  failing: Failing,
): Promise<boolean> {
  const failingMs = Date.now() - failing.since;
  const why = failing.error instanceof Error
    ? `${failing.error.name}: ${failing.error.message}`
    : String(failing.error);
  const reason = `the handler kept failing on it (${failing.attempts} attempts in ` +
    `${Math.round(failingMs / 1000)} s): ${why}`;
  // The first failure is logged, then one line every RETRY_LOG_EVERY_MS, as for retries.
  let loggedAt = 0;
  const quiet = () => {
    if (Date.now() - loggedAt < RETRY_LOG_EVERY_MS) return true;
    loggedAt = Date.now();
    return false;
  };
  for (
    let attempt = 0;
    !await tryPark(ctx, item.msg, { reason, then: "trying again", quiet: quiet() });
    attempt++
  ) {
    const pauseMs = RETRY_PAUSES_MS[Math.min(attempt, RETRY_PAUSES_MS.length - 1)];
    if (await pause(pauseMs, ctx.stopping)) continue;
    giveBack([item]);
    return false;
  }
  ctx.handled.poisoned.add(1);
  ctx.options.log.error("parked a fact its handler kept failing on; the facts behind it go on", {
    durable: ctx.name,
    ...factFields(item),
    attempts: failing.attempts,
    failingMs,
    deliveries: item.msg.info.deliveryCount,
    error: failing.error,
  });
  return true;
}

/** Waits `ms`; false as soon as `signal` aborts (or if it already has). */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (waited: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", aborted);
      resolve(waited);
    };
    const aborted = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", aborted);
  });
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
const handledTotal = metrics.counter(
  "oe_facts_handled",
  "Facts this instance handled, per consumer and outcome (acked, parked, retried, skipped: " +
    "of a type it does not know)",
  ["durable", "outcome"],
);

const poisonedTotal = metrics.counter(
  "oe_facts_poisoned",
  "Facts this instance parked because its handler kept failing on them while its dependencies " +
    "worked (poison facts), per consumer; also counted as parked in oe_facts_handled",
  ["durable"],
);

function handledFacts(durable: string) {
  return {
    acked: handledTotal.series(durable, "acked"),
    parked: handledTotal.series(durable, "parked"),
    retried: handledTotal.series(durable, "retried"),
    skipped: handledTotal.series(durable, "skipped"),
    poisoned: poisonedTotal.series(durable),
  };
}

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
function watchLag<S extends string>(jsm: JetStreamManager, ctx: BatchContext<S>): () => void {
  const series = lag.series(ctx.name);
  const read = async () => {
    // The position the floor belongs to: a stream made anew meanwhile has a position of its own.
    const position = ctx.position;
    const info = await jsm.consumers.info(ctx.stream, ctx.name);
    series.set(info.num_pending + info.num_ack_pending);
    position.acknowledgedUpTo(info.ack_floor.stream_seq);
  };
  const timer = setInterval(
    () => read().catch(() => {}), // gone or NATS away: the stalled pull deals with it
    ctx.options.floorReadMs ?? FLOOR_READ_MS,
  );
  Deno.unrefTimer(timer);
  const uncollect = metrics.collect("fact_consumer_lag", read);
  return () => {
    clearInterval(timer);
    uncollect();
  };
}
