/**
 * What handling a batch of facts needs (`BatchContext`), what it counts, and which of its
 * messages came from a fact stream lost and made again since they were delivered: those must
 * never be settled (`fromLostStream`). Used by the consumer (shared/consumer.ts), its parking
 * (shared/fact_parking.ts) and its turns (shared/fact_turns.ts).
 */
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import type { Bus } from "./bus.ts";
import type { FactConsumerOptions } from "./consumer.ts";
import type { Fact } from "./facts.ts";
import { StreamPosition } from "./fact_position.ts";
import { metrics } from "./metrics.ts";

/** What handling a batch needs: where to park, whom to hand facts to, what to count. */
export interface BatchContext<S extends string> {
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
export function noteDelivery<S extends string>(ctx: BatchContext<S>, msg: JsMsg): void {
  deliveries.set(msg, {
    arrival: ++ctx.arrivals,
    position: ctx.position,
    streamCreated: ctx.streamCreated,
  });
  ctx.position.delivered(msg.info.streamSequence, msg.info.deliverySequence);
}

export function positionOf<S extends string>(ctx: BatchContext<S>, msg: JsMsg): StreamPosition {
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
export function followNewStream<S extends string>(ctx: BatchContext<S>, created: string): void {
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
export async function fromLostStream<S extends string>(
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

/** A fact as delivered: its message, to settle, and what it says. */
export interface Delivered {
  msg: JsMsg;
  fact: Fact;
}

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

export function handledFacts(durable: string) {
  return {
    acked: handledTotal.series(durable, "acked"),
    parked: handledTotal.series(durable, "parked"),
    retried: handledTotal.series(durable, "retried"),
    skipped: handledTotal.series(durable, "skipped"),
    poisoned: poisonedTotal.series(durable),
  };
}
