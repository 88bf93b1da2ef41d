/**
 * One instance at a time replays for a consumer's catch-up (shared/fact_catch_up.ts): a claim in
 * the service's own database (`PositionStore.claimReplay`, table `fact_replays`), taken before the
 * replay consumer is made and renewed while it pulls. The replay consumer has a fixed name (a NATS
 * user is granted that one), so two instances replaying at once pulled from one consumer, each
 * taking facts the other held unsettled for settled, and its kept position moved past them (a
 * review reproduced facts lost for good so); nats-server 2.9 accepts a second identical creation
 * without a word, so the server cannot tell them apart. The database both catch up can.
 *
 * @example
 * ```ts ignore
 * const claim = await ReplayClaim.take(store, "discounts-catalog");
 * if (claim) {
 *   claim.hold(() => stopReplaying());
 *   // ... replay ...
 *   await claim.release();
 * }
 * ```
 */
import type { PositionStore } from "./fact_kept_position.ts";

/** How long a claim stands unless renewed: an instance that died holds a catch-up up this long. */
export const CLAIM_MS = 15_000;
/** How often an instance that replays renews its claim. */
const RENEW_EVERY_MS = 1_000;
/**
 * How long an instance replays without a renewal answered (the database away, or slow) before it
 * stops pulling: well before its claim may lapse and another instance make the replay consumer
 * anew under the same name, whose facts its pulls would then take.
 */
const GIVE_UP_AFTER_MS = 6_000;

export class ReplayClaim {
  readonly #store: PositionStore;
  readonly #consumer: string;
  readonly #claimant = crypto.randomUUID();
  /** When the claim was last asked for and given: it stands CLAIM_MS from about then. */
  #heldSince = performance.now();
  #renewing: ReturnType<typeof setInterval> | undefined;
  /** A renewal asked for and not answered yet. */
  #asking: Promise<unknown> | undefined;
  #ended = false;

  private constructor(store: PositionStore, consumer: string) {
    this.#store = store;
    this.#consumer = consumer;
  }

  /** This process's claim on the catch-up of `consumer`; undefined while another's stands. */
  static async take(store: PositionStore, consumer: string): Promise<ReplayClaim | undefined> {
    const claim = new ReplayClaim(store, consumer);
    return await store.claimReplay(consumer, claim.#claimant, CLAIM_MS) ? claim : undefined;
  }

  /**
   * Renews the claim until it is released; calls `lost` once, and stops renewing, when another
   * claimant took it or no renewal was answered for GIVE_UP_AFTER_MS.
   */
  hold(lost: () => void): void {
    const lose = () => {
      if (this.#ended) return;
      this.#end();
      lost();
    };
    this.#renewing = setInterval(() => {
      if (this.lapsing) return lose();
      if (this.#asking) return;
      const askedAt = performance.now();
      this.#asking = this.#store.claimReplay(this.#consumer, this.#claimant, CLAIM_MS).then(
        (held) => held ? this.#heldSince = askedAt : lose(),
        () => {}, // the database away: the time without a renewal runs on
      ).finally(() => this.#asking = undefined);
    }, RENEW_EVERY_MS);
  }

  /**
   * Whether this instance must stop replaying: its claim lost, or not renewed for GIVE_UP_AFTER_MS
   * (counted from when it was asked for: the take's own wait counts too, a review found).
   */
  get lapsing(): boolean {
    return this.#ended || performance.now() - this.#heldSince > GIVE_UP_AFTER_MS;
  }

  /** Gives the claim up (the replay done or stopped); it lapses by itself if this cannot. */
  async release(): Promise<void> {
    this.#end();
    // A renewal answered after the release would stand the claim again for CLAIM_MS (a review).
    await this.#asking;
    await this.#store.releaseReplay(this.#consumer, this.#claimant).catch(() => {});
  }

  #end(): void {
    this.#ended = true;
    clearInterval(this.#renewing);
  }
}
