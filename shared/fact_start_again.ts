/**
 * How a fact consumer that keeps its position in its service's database starts again: when a loss
 * is found under it (`healingLosses`), once another instance's catch-up is done
 * (`afterOtherReplay`), and whenever the bus does not answer yet (`whenReachable`). The catch-up
 * itself is shared/fact_catch_up.ts; opening and pulling, shared/consumer.ts.
 */
import type { FactConsumer, FactConsumerOptions, OpenedConsumer } from "./consumer.ts";
import type { Consuming } from "./fact_catch_up.ts";
import { LinePace } from "./log.ts";

/**
 * A consumer that starts again when its kept position says the database lost commits under it
 * (`PositionStore.onLost`): the start finds the loss kept and replays from it (`keptBehind`).
 */
export function healingLosses<S extends string>(
  options: FactConsumerOptions<S>,
  first: FactConsumer,
  startAgain: () => Promise<FactConsumer>,
): FactConsumer {
  const stopping = new AbortController();
  let current: Promise<FactConsumer | undefined> = Promise.resolve(first);
  options.keptIn!.onLost(options.durable!, () => {
    current = current.then(async (consumer) => {
      if (stopping.signal.aborted) return consumer;
      await consumer?.stop();
      return await whenReachable(startAgain, options, stopping.signal);
    });
  });
  return {
    async stop() {
      stopping.abort();
      await (await current)?.stop();
    },
  };
}

/**
 * While another instance replays for the same database (every running instance sees a loss
 * marked, instances start together or during a catch-up), this one hands nothing over: it waits
 * until that instance's claim is gone (released, or lapsed if it died), then starts again, and
 * finds the database caught up (or behind still, and replays itself). `quiet`: after this
 * instance's own claim lapsed, which it said.
 */
export function afterOtherReplay<S extends string>(
  consuming: Consuming<S>,
  options: FactConsumerOptions<S>,
  durable: OpenedConsumer,
  { quiet = false } = {},
): FactConsumer {
  if (!quiet) {
    options.log.info(
      "another instance is handing the facts over again; following once it is done",
      { durable: durable.name },
    );
  }
  const stopping = new AbortController();
  let following: FactConsumer | undefined;
  const unknown = new LinePace(UNKNOWN_CLAIM_LOG_MS);
  const claimed = () =>
    options.keptIn!.replayClaimed(durable.name).catch((error) => {
      if (unknown.due()) {
        options.log.warn(
          "cannot tell whether another instance still hands the facts over again; waiting",
          { durable: durable.name, error },
        );
      }
      return true;
    });
  const waited = (async () => {
    while (!stopping.signal.aborted && await claimed()) {
      await delay(OTHER_REPLAY_CHECK_MS, stopping.signal);
    }
    following = await whenReachable(() => consuming.startAgain(options), options, stopping.signal);
  })();
  return {
    async stop() {
      stopping.abort();
      await waited;
      await following?.stop();
    },
  };
}

/** How often an instance waiting for another's replay looks whether it is done. */
const OTHER_REPLAY_CHECK_MS = 1_000;
/** How often, at most, a waiting instance says it cannot read the claim. */
const UNKNOWN_CLAIM_LOG_MS = 30_000;

/** Starts following once the bus answers (a moment without NATS must not end the consumer). */
export async function whenReachable<S extends string>(
  start: () => Promise<FactConsumer>,
  options: FactConsumerOptions<S>,
  stopping: AbortSignal,
): Promise<FactConsumer | undefined> {
  while (!stopping.aborted) {
    try {
      return await start();
    } catch (error) {
      options.log.warn("cannot follow the fact consumer yet; trying again", {
        durable: options.durable,
        error,
      });
      await delay(1_000, stopping);
    }
  }
  return undefined;
}

/** Waits `ms`, or less when `signal` aborts (not at all once it has). */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
