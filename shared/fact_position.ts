/**
 * Where a fact consumer stands in its stream, kept by the consumer itself: the stream sequences
 * handed to it and not yet settled (acknowledged or parked), and the highest one settled. A
 * consumer that the server removed (an ephemeral one, after its inactive threshold while the
 * process was cut off from NATS; a durable one someone deleted) is made again from `resumeAt()`:
 * nothing unsettled is skipped, and nothing settled is replayed but what was handed over after it
 * (a handler is idempotent).
 *
 * A durable consumer is shared by every instance of its service, and this instance sees only the
 * facts handed to it: another may hold a lower one, unsettled. So a shared position never resumes
 * past the server's acknowledgement floor as last read (`acknowledgedUpTo`): every fact up to it
 * was settled by some instance. What the others settled above it is handed over again.
 *
 * A consumer of its own (an ephemeral one) numbers its deliveries 1, 2, 3...: a gap in those
 * numbers is a delivery that never arrived (lost on a connection that went silent, or with the
 * node that sent it). The server sends it again after the ack wait, but a consumer removed before
 * then (an outage of over 30 s) takes it along: made again after the facts settled behind it,
 * it skipped it for good (a review, 2026-12-04). Such a consumer resumes no later than the first
 * fact that lost delivery can be until the server's acknowledgement floor passes it.
 *
 * @example
 * ```ts
 * import { StreamPosition } from "@shared/fact_position.ts";
 * const position = new StreamPosition(6);
 * position.delivered(7);
 * position.delivered(8);
 * position.settled(8);
 * console.log(position.resumeAt()); // 7: fact 7 was given back, not settled
 * ```
 */
export class StreamPosition {
  readonly #unsettled = new Set<number>();
  readonly #shared: boolean;
  #highestSettled: number;
  #acknowledged: number;
  /** Where a delivery that never arrived may be, until the acknowledgement floor passes it. */
  #missedFrom: number | undefined;
  /** The consumer's number of the last delivery (its own deliveries only: not shared). */
  #lastDelivery = 0;
  /** The highest sequence the consumer, as made last, delivered. */
  #highestDelivered: number;

  /**
   * `floor`: the last sequence before the consumer's first fact (0: the stream's start, or a
   * consumer of new facts made on an empty stream), or an existing consumer's acknowledgement
   * floor. `shared`: other instances take from the same consumer (a durable one).
   */
  constructor(floor = 0, options: { shared?: boolean } = {}) {
    this.#highestSettled = floor;
    this.#acknowledged = floor;
    this.#highestDelivered = floor;
    this.#shared = options.shared ?? false;
  }

  /** The server says every fact up to `sequence` is settled (its acknowledgement floor). */
  acknowledgedUpTo(sequence: number): void {
    this.#acknowledged = Math.max(this.#acknowledged, sequence);
    if (this.#missedFrom !== undefined && this.#missedFrom <= sequence) {
      this.#missedFrom = undefined;
    }
    // Settled by some instance (a fact this one gave back and another then handled): kept, it
    // held every remake back to it, a replay of everything since, and the set grew for good.
    for (const unsettled of this.#unsettled) {
      if (unsettled <= sequence) this.#unsettled.delete(unsettled);
    }
  }

  /**
   * A fact at `sequence` was handed to the consumer (again, after a redelivery), as its
   * `deliverySequence`th delivery. A delivery that never arrived was a fact the consumer had not
   * delivered before (above the highest it did), or one it delivered again, kept unsettled here.
   */
  delivered(sequence: number, deliverySequence?: number): void {
    if (!this.#shared && deliverySequence !== undefined) {
      if (deliverySequence > this.#lastDelivery + 1) {
        this.#missedFrom = Math.min(this.#missedFrom ?? Infinity, this.#highestDelivered + 1);
      }
      this.#lastDelivery = Math.max(this.#lastDelivery, deliverySequence);
    }
    this.#highestDelivered = Math.max(this.#highestDelivered, sequence);
    this.#unsettled.add(sequence);
  }

  /** The consumer was made again, from `sequence`: it numbers its deliveries from 1 again. */
  remade(sequence: number): void {
    this.#lastDelivery = 0;
    this.#highestDelivered = sequence - 1;
  }

  /** The fact at `sequence` was acknowledged or parked: the server will not send it again. */
  settled(sequence: number): void {
    this.#unsettled.delete(sequence);
    this.#highestSettled = Math.max(this.#highestSettled, sequence);
  }

  /** The highest sequence settled, here or (shared) by any instance as far as the floor says. */
  get highestSettled(): number {
    return Math.max(this.#highestSettled, this.#acknowledged);
  }

  /**
   * The first sequence not known to be settled: where a replay of a database written by this
   * consumer's handler must start. For a shared consumer, the floor as last read decides (every
   * fact up to it was settled by some instance, so written) unless this instance holds a fact
   * below it; `resumeAt` stays at this instance's own place instead, which for a durable that
   * never handed a fact over is its start, below a floor that moved on (a review).
   */
  settledBefore(): number {
    if (!this.#shared) return this.resumeAt();
    const held = this.#unsettled.size ? Math.min(...this.#unsettled) : Infinity;
    return Math.min(held, this.#acknowledged + 1);
  }

  /**
   * The first sequence a consumer made again must deliver. Always a sequence, never the
   * consumer's own start: made again with `start: "new"`, it skipped what was published while it
   * was gone (a floor of 0 is an empty stream, not the start of a replay).
   */
  resumeAt(): number {
    const own = Math.min(
      this.#unsettled.size ? Math.min(...this.#unsettled) : this.#highestSettled + 1,
      this.#missedFrom ?? Infinity,
    );
    return this.#shared ? Math.min(own, this.#acknowledged + 1) : own;
  }
}
