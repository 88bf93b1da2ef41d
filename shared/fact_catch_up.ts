/**
 * What a durable consumer does when its service keeps its position in its own database
 * (`keptIn`, shared/fact_kept_position.ts): at start, a database found behind the consumer
 * (restored from a backup, a failover that lost commits) gets the facts it lacks handed over again
 * by a consumer of its own before the durable goes on (`keptBehind`, `catchUpFirst`), one instance
 * at a time (shared/fact_replay_claim.ts). Starting again (a loss found while it runs, another
 * instance's catch-up done) is shared/fact_start_again.ts; the consumer itself (opening, pulling)
 * is shared/consumer.ts, which hands its parts over as `Consuming`.
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { FactConsumer, FactConsumerOptions, OpenedConsumer, Pulling } from "./consumer.ts";
import type { KeptPosition } from "./fact_kept_position.ts";
import { ReplayClaim } from "./fact_replay_claim.ts";
import { afterOtherReplay, delay, whenReachable } from "./fact_start_again.ts";

/** The consumer's own parts a catch-up uses: open a consumer, pull from it, start over. */
export interface Consuming<S extends string> {
  open(options: FactConsumerOptions<S>): Promise<OpenedConsumer>;
  /** Pulls from `opened`; `keptAs` names the position it keeps (a replay: the durable's). */
  pull(options: FactConsumerOptions<S>, opened: OpenedConsumer, keptAs?: string): Promise<Pulling>;
  /** Opens the durable and follows it as at start (a database behind it catches up first). */
  startAgain(options: FactConsumerOptions<S>): Promise<FactConsumer>;
}

/**
 * The consumer a catch-up replays with: named after its durable, so that a NATS user limited to
 * its own consumers may be granted it (shared/nats_permissions.ts; a name the server chose was
 * refused there, and the service's start failed).
 */
export function replayConsumerName(durable: string): string {
  return `${durable}-replay`;
}

/**
 * The position the service's database keeps when it is behind the durable consumer `opened`: in
 * the same stream, where a replay would start (`resumeAt`, every fact before it in the database)
 * is at or below where the consumer's settled facts may reach (`OpenedConsumer.reached`), so facts
 * since may have been settled that the database lacks (up to its floor, and above it out of order,
 * by other instances). Not
 * `highest`: with several instances the highest fact settled can be above facts another instance
 * held then (a review lost three facts so). Undefined when it is not, or keeps none (a database
 * new, or older than the positions kept in it: the consumer then goes on as it stands). Running
 * instances write their position after each floor read (KEPT_EVERY_MS), and a stopping one
 * at its stop: a position found behind is read again after longer than that, and one that moved
 * past meanwhile, or that any instance wrote meanwhile (it watches for losses itself), was not
 * behind. A loss marked (`lost`) is behind for good: not read again.
 */
export async function keptBehind<S extends string>(
  opened: OpenedConsumer,
  options: FactConsumerOptions<S>,
): Promise<KeptPosition | undefined> {
  const store = options.keptIn;
  if (!store || !options.durable) return undefined;
  const behind = (kept: KeptPosition | undefined) =>
    kept && kept.stream === opened.streamCreated && kept.resumeAt <= opened.reached
      ? kept
      : undefined;
  const first = await store.read(opened.name);
  const kept = behind(first);
  if (!kept) {
    // A loss marked past everything handed over: the durable hands those facts over anyway.
    if (first?.lost) await store.caughtUp(opened.name, first.lost);
    return undefined;
  }
  if (kept.lost) return kept;
  await new Promise((resolve) => setTimeout(resolve, KEPT_SETTLE_MS));
  const again = await store.read(opened.name);
  // Written meanwhile: instances run, and one that finds a loss under it marks it (a review: an
  // instance started beside one holding a fact for long replayed it, the position unmoved).
  if (again?.keptAt !== kept.keptAt && !again?.lost) return undefined;
  return behind(again);
}

/**
 * How long a start waits before it reads a position found behind again: running instances write
 * it every KEPT_EVERY_MS, within one floor read and a write.
 */
const KEPT_SETTLE_MS = 2_500;

/**
 * Hands over again, with a consumer of its own, the facts from the database's kept position
 * through where the durable's settled facts may reach, then follows the durable. The database is
 * marked behind first (`lost_from`, cleared once caught up), so a start cut short replays from the
 * mark again, whatever the replay's own progress wrote meanwhile. In the background, as a follower
 * catches up on a backlog: the service serves meanwhile. `handle` is idempotent, so the facts the
 * database did hold are handed over again harmlessly. One instance replays at a time
 * (`ReplayClaim`); another waits for it (`afterOtherReplay`).
 */
export async function catchUpFirst<S extends string>(
  consuming: Consuming<S>,
  options: FactConsumerOptions<S>,
  durable: OpenedConsumer,
  kept: KeptPosition,
): Promise<FactConsumer> {
  const claim = await ReplayClaim.take(options.keptIn!, durable.name);
  if (!claim) return afterOtherReplay(consuming, options, durable);
  try {
    // Read again now that it is this instance's: another may have caught up since it was read.
    // None now (its table made anew, empty): a new database, not behind (as `keptBehind` says).
    const now = await options.keptIn!.read(durable.name);
    if (!now || (now.stream === kept.stream && !now.lost && now.resumeAt > durable.reached)) {
      await claim.release();
      return (await consuming.pull(options, durable)).consumer;
    }
    return await replayClaimed(consuming, options, durable, now, claim);
  } catch (error) {
    await claim.release();
    throw error;
  }
}

/** `catchUpFirst` with the catch-up claimed: the replay, then the durable. */
async function replayClaimed<S extends string>(
  consuming: Consuming<S>,
  options: FactConsumerOptions<S>,
  durable: OpenedConsumer,
  kept: KeptPosition,
  claim: ReplayClaim,
): Promise<FactConsumer> {
  const through = durable.reached;
  const name = replayConsumerName(durable.name);
  kept = await markedBehind(options, durable, kept);
  const replayOptions = {
    ...options,
    durable: undefined,
    name,
    start: { sequence: kept.resumeAt },
  };
  const claimLost = heldUntilLost(options, durable, claim);
  // One of this name now was left by an instance that lost its claim (it died, or stopped pulling
  // as the claim lapsed): made anew from this start, never shared.
  await removeReplay(durable, name, { left: true });
  const replaying = await consuming.open(replayOptions);
  // Lapsed meanwhile, another instance may have made its own under the name: never pulled.
  if (claim.lapsing) {
    if (!claimLost.signal.aborted) sayStopping(options, durable);
    await claim.release();
    return afterOtherReplay(consuming, options, durable, { quiet: true });
  }
  const replay = await consuming.pull(replayOptions, replaying, durable.name);
  const stopping = new AbortController();
  let following: FactConsumer | undefined;
  const switched = (async () => {
    try {
      await replayedThrough(replaying, replay, through, anyOf(stopping, claimLost));
      await replay.consumer.stop();
    } finally {
      // At once rather than after its inactive threshold (the progress is kept in the database),
      // unless another instance may have made its own under the name since.
      if (!claimLost.signal.aborted) await removeReplay(replaying, name, { left: false });
      await claim.release();
    }
    following = await afterReplay(consuming, options, durable, kept, through, {
      stopping: stopping.signal,
      claimLost: claimLost.signal,
    });
  })();
  return {
    async stop() {
      stopping.abort();
      await switched;
      await following?.stop();
    },
  };
}

/**
 * `kept` marked behind as a loss is, and said: an instance starting meanwhile takes the database
 * for behind and waits for this claim, instead of following the durable and moving the kept
 * position past what this replay has yet to hand over (a review lost facts so, once the replayer
 * stopped early).
 */
async function markedBehind<S extends string>(
  options: FactConsumerOptions<S>,
  durable: OpenedConsumer,
  kept: KeptPosition,
): Promise<KeptPosition> {
  const lost = kept.lost ?? await options.keptIn!.markBehind(durable.name, kept.resumeAt);
  // A loss marked by another instance since it was read is merged into the mark, lower perhaps:
  // replayed too, as clearing the mark at the end says.
  const resumeAt = Math.min(kept.resumeAt, lost.from);
  options.log.warn(
    "the database is behind its fact consumer (restored from a backup, a failover that lost " +
      "commits, or an instance that stopped without writing where it stood): handing over " +
      "again the facts from its kept position",
    { durable: durable.name, fromSequence: resumeAt, throughSequence: durable.reached },
  );
  return { ...kept, resumeAt, lost };
}

/** Renews `claim` while the replay runs; the controller aborts, said, once it lapses. */
function heldUntilLost<S extends string>(
  options: FactConsumerOptions<S>,
  durable: OpenedConsumer,
  claim: ReplayClaim,
): AbortController {
  const lost = new AbortController();
  claim.hold(() => {
    sayStopping(options, durable);
    lost.abort();
  });
  return lost;
}

/** Says that this instance stops replaying because its claim lapsed (once per lapse). */
function sayStopping<S extends string>(
  options: FactConsumerOptions<S>,
  durable: OpenedConsumer,
): void {
  options.log.warn(
    "stopping handing facts over again: this instance's claim on the catch-up lapsed (its " +
      "database slow or away); another instance goes on with it, or this one once it can",
    { durable: durable.name },
  );
}

/** What follows a replay that ended: nothing (stopped), a wait (its claim lapsed), the durable. */
async function afterReplay<S extends string>(
  consuming: Consuming<S>,
  options: FactConsumerOptions<S>,
  durable: OpenedConsumer,
  kept: KeptPosition,
  through: number,
  ended: { stopping: AbortSignal; claimLost: AbortSignal },
): Promise<FactConsumer | undefined> {
  if (ended.stopping.aborted) {
    // The mark stands: the next start (this instance's or another's) replays from it again.
    options.log.info("stopped before catching up with the fact consumer; a start goes on", {
      durable: durable.name,
    });
    return undefined;
  }
  if (ended.claimLost.aborted) {
    return afterOtherReplay(consuming, options, durable, { quiet: true });
  }
  return await followAfterCatchUp(consuming, options, durable, kept, through, ended.stopping);
}

/** Notes the catch-up done, then follows the durable. */
async function followAfterCatchUp<S extends string>(
  consuming: Consuming<S>,
  options: FactConsumerOptions<S>,
  durable: OpenedConsumer,
  kept: KeptPosition,
  through: number,
  stopping: AbortSignal,
): Promise<FactConsumer | undefined> {
  if (kept.lost) {
    await options.keptIn?.caughtUp(durable.name, kept.lost).catch((error) => {
      options.log.warn("cannot note the catch-up; a start will replay again", { error });
    });
  }
  options.log.info("caught up with the fact consumer", { durable: durable.name, through });
  // Opened again: removed meanwhile (by hand, with a lost store), it is made again, and its
  // floor and stream are read as they are now (a review: followed as found at start, a durable
  // removed during the replay was never made again, and the service's facts stopped for good).
  return await whenReachable(
    async () => (await consuming.pull(options, await consuming.open(options))).consumer,
    options,
    stopping,
  );
}

/**
 * Removes the replay consumer `name`: one `left` by an instance that lost its claim must go before
 * a replay starts (a failure fails the start); this instance's own, once done, may outlive a
 * failure by its inactive threshold.
 */
async function removeReplay(
  on: Pick<OpenedConsumer, "jsm" | "stream">,
  name: string,
  { left }: { left: boolean },
): Promise<void> {
  await on.jsm.consumers.delete(on.stream, name).catch((error) => {
    const gone = error instanceof JetStreamApiError &&
      error.code === JetStreamApiCodes.ConsumerNotFound;
    if (left && !gone) throw error;
  });
}

/** A signal that aborts when either controller does. */
function anyOf(...controllers: AbortController[]): AbortSignal {
  return AbortSignal.any(controllers.map((controller) => controller.signal));
}

/** How often a replay's progress is looked at. */
const REPLAY_CHECK_MS = 250;

/**
 * Waits until the replay settled every fact through `through`, or has nothing left to hand over
 * (the facts at the floor gone from the stream meanwhile, by its age limit), or is stopped.
 */
async function replayedThrough(
  opened: OpenedConsumer,
  replay: Pulling,
  through: number,
  stopping: AbortSignal,
): Promise<void> {
  while (!stopping.aborted && replay.settled().resumeAt() <= through) {
    await delay(REPLAY_CHECK_MS, stopping);
    const info = await opened.jsm.consumers.info(opened.stream, opened.name).catch(() => undefined);
    if (info && info.num_pending + info.num_ack_pending === 0) return;
  }
}
