/**
 * Where a fact consumer stands in its stream, kept by the consumer itself: the stream sequences
 * handed to it and not yet settled (acknowledged or parked), and the highest one settled. A
 * consumer that the server removed (an ephemeral one, after its inactive threshold while the
 * process was cut off from NATS) is made again from `resumeAt()`: nothing unsettled is skipped,
 * and nothing settled is replayed but what was handed over after it (a handler is idempotent).
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
  #highestSettled: number;

  /**
   * `floor`: the last sequence before the consumer's first fact (0: the stream's start, or a
   * consumer of new facts made on an empty stream).
   */
  constructor(floor = 0) {
    this.#highestSettled = floor;
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
    if (this.#unsettled.size) return Math.min(...this.#unsettled);
    return this.#highestSettled + 1;
  }
}
