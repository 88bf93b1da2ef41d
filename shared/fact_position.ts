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

  /**
   * `floor`: the last sequence before the consumer's first fact (0: the stream's start, or a
   * consumer of new facts made on an empty stream), or an existing consumer's acknowledgement
   * floor. `shared`: other instances take from the same consumer (a durable one).
   */
  constructor(floor = 0, options: { shared?: boolean } = {}) {
    this.#highestSettled = floor;
    this.#acknowledged = floor;
    this.#shared = options.shared ?? false;
  }

  /** The server says every fact up to `sequence` is settled (its acknowledgement floor). */
  acknowledgedUpTo(sequence: number): void {
    this.#acknowledged = Math.max(this.#acknowledged, sequence);
    // Settled by some instance (a fact this one gave back and another then handled): kept, it
    // held every remake back to it, a replay of everything since, and the set grew for good.
    for (const unsettled of this.#unsettled) {
      if (unsettled <= sequence) this.#unsettled.delete(unsettled);
    }
  }

  /** A fact at `sequence` was handed to the consumer (again, after a redelivery). */
  delivered(sequence: number): void {
    this.#unsettled.add(sequence);
  }

  /** The fact at `sequence` was acknowledged or parked: the server will not send it again. */
  settled(sequence: number): void {
    this.#unsettled.delete(sequence);
    this.#highestSettled = Math.max(this.#highestSettled, sequence);
  }

  /**
   * The first sequence a consumer made again must deliver. Always a sequence, never the
   * consumer's own start: made again with `start: "new"`, it skipped what was published while it
   * was gone (a floor of 0 is an empty stream, not the start of a replay).
   */
  resumeAt(): number {
    const own = this.#unsettled.size ? Math.min(...this.#unsettled) : this.#highestSettled + 1;
    return this.#shared ? Math.min(own, this.#acknowledged + 1) : own;
  }
}
