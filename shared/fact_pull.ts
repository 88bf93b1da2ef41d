/**
 * The pull loop of a fact consumer (shared/consumer.ts): one continuous pull from a durable
 * JetStream consumer, renewed in place when it goes silent (a node gone, a leader moved), batches
 * handed over in stream order as soon as facts stop arriving, and what is in hand kept from
 * redelivery. How a batch is handled, retried or parked is the consumer's business
 * (`PullSource.handleBatch`).
 *
 * @example
 * ```ts ignore
 * const health = new PullHealth(log, "audit-all");
 * const inHand = new InHand(1_000);
 * const pulling = pullForever(bus, { consumer, health, batchSize: 500, inHand, handleBatch });
 * await pulling.stop();
 * ```
 */
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import type { Bus } from "./bus.ts";
import type { Logger } from "./log.ts";

/** How long a partial batch waits for more facts before it is handled. */
const FLUSH_AFTER_MS = 5;
/**
 * Pull sizing for fast recovery. While a pull waits, the server sends a heartbeat every
 * IDLE_HEARTBEAT_MS; silence for STALL_AFTER_MS (two heartbeats and a margin) means the pull is
 * gone: the node leading the consumer or the stream went away, or our connection moved to
 * another server. The pull is then made again at once, and every REPULL_STALLED_MS until the
 * server answers, instead of waiting out its expiry (26-41 s of silence with the defaults).
 */
const IDLE_HEARTBEAT_MS = 500;
const PULL_EXPIRES_MS = 5_000;
const STALL_AFTER_MS = 1_200;
const REPULL_STALLED_MS = 600;

/** Pause before a new pull after one failed outright. */
const RETRY_MS = 250;
/** How long a pull stays stalled before the consumer is asked whether it still exists, and how often. */
const REMAKE_CHECK_MS = 2_000;

/**
 * The messages received and not yet settled (acked, naked or parked): each held longer than a
 * third of the ack wait is told to the server as in progress, which restarts its ack wait. The
 * clock runs only while something is held: an idle consumer wakes nobody.
 */
export class InHand {
  readonly #held = new Map<JsMsg, number>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly ackWaitMs: number) {}

  hold(msg: JsMsg): void {
    this.#held.set(msg, Date.now());
    this.#timer ??= setInterval(
      () => this.#keepAlive(),
      Math.max(1, Math.floor(this.ackWaitMs / 3)),
    );
  }

  release(messages: readonly JsMsg[]): void {
    for (const msg of messages) this.#held.delete(msg);
    if (this.#held.size === 0) this.#stopClock();
  }

  #keepAlive(): void {
    const now = Date.now();
    for (const [msg, since] of this.#held) {
      if (now - since < this.ackWaitMs / 3) continue;
      msg.working();
      this.#held.set(msg, now);
    }
  }

  #stopClock(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  stop(): void {
    this.#stopClock();
    this.#held.clear();
  }
}

/** What the pull loop needs: the consumer to pull from and what to do with each batch. */
export interface PullSource {
  consumer: Consumer;
  health: PullHealth;
  batchSize: number;
  /** Messages received and not yet settled, kept from redelivery while they wait or are handled. */
  inHand: InHand;
  /**
   * Told of each message as it arrives, before it waits for its batch: what the consumer stands
   * on then (the stream it follows) is what the message came from, not what it stands on when
   * the batch is handed over, after the batches before it.
   */
  received?(msg: JsMsg): void;
  handleBatch(messages: JsMsg[]): Promise<void>;
  /**
   * Asked while the pull stays stalled: a consumer the server no longer has (an ephemeral one,
   * removed after its inactive threshold while this process was cut off from NATS, or a durable
   * one someone deleted) is made again
   * and returned, and the pull goes on from it; undefined while it exists. Without it, a pull on
   * a removed consumer stayed stalled for good.
   */
  remake?(): Promise<Consumer | undefined>;
}

/**
 * Pulls until stopped, making a new pull whenever one fails or ends (after RETRY_MS when the
 * consumer is stalled). `stop` ends the pull in progress and waits for the batch in hand.
 */
export function pullForever(bus: Bus, source: PullSource): { stop(): Promise<void> } {
  const { health } = source;
  let stopped = false;
  // The pull in progress: stop() ends it.
  let current: { stop(): void } | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        await pullOnce(source, (pull) => current = pull);
        if (!stopped) health.stalled("the pull ended");
      } catch (error) {
        if (stopped || bus.nc.isClosed()) break;
        health.stalled("the pull failed", error);
      }
      if (!stopped && health.isStalled) await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      current?.stop();
      await loop;
    },
  };
}

/**
 * Pulls continuously and hands facts over as soon as they stop arriving (a few ms), or when a
 * full batch is in hand: a single fact is handled at once, a backlog in large batches. Batches
 * never overlap, so facts are handled in stream order. A stalled pull is renewed in place
 * (see `watchPull`); the loop makes a new one only when it fails or ends.
 */
async function pullOnce(
  source: PullSource,
  started: (pull: { stop(): void }) => void,
): Promise<void> {
  const { health, batchSize, inHand } = source;
  const messages = await source.consumer.consume({
    max_messages: batchSize,
    expires: PULL_EXPIRES_MS,
    idle_heartbeat: IDLE_HEARTBEAT_MS,
  });
  started(messages);
  const remake = source.remake && (async () => {
    const made = await source.remake!();
    if (made) source.consumer = made;
    return made !== undefined;
  });
  const watch = watchPull(messages as unknown as WatchedPull, health, remake);
  let pending: JsMsg[] = [];
  let handled = Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    if (batch.length) {
      handled = handled.then(() => health.busyWith(source.handleBatch(batch)))
        .finally(() => inHand.release(batch));
    }
    return handled;
  };
  try {
    for await (const msg of messages) {
      health.alive();
      inHand.hold(msg);
      source.received?.(msg);
      pending.push(msg);
      // Not awaited: the loop goes on taking what arrives (and keeping it alive) while batches
      // are handled in turn; max_ack_pending bounds what can be in hand.
      if (pending.length >= batchSize) flush();
      else timer ??= setTimeout(flush, FLUSH_AFTER_MS);
    }
    await flush();
  } catch (error) {
    // A pull that ends in an error still hands over what it took and waits for its batches:
    // the next pull's batches must not run beside them (found by reading, by a review).
    await flush().catch(() => {});
    throw error;
  } finally {
    watch.stop();
  }
}

/** Stalls and resumes of one consumer, each logged once per transition. */
export class PullHealth {
  #stalledAt: number | undefined;
  #lastSign = Date.now();
  #handling = 0;

  constructor(readonly log: Logger, readonly durable: string) {}

  get isStalled(): boolean {
    return this.#stalledAt !== undefined;
  }

  /** Milliseconds since the pull stalled; 0 while it is not. */
  get stalledMs(): number {
    return this.#stalledAt === undefined ? 0 : Date.now() - this.#stalledAt;
  }

  /**
   * Milliseconds since the server last showed the pull is alive; 0 while a batch is handled
   * (facts the server sent meanwhile wait unread, so silence then proves nothing).
   */
  get silentMs(): number {
    return this.#handling ? 0 : Date.now() - this.#lastSign;
  }

  /** Runs the handling of a batch; the silence clock restarts when it is done. */
  async busyWith(work: Promise<void>): Promise<void> {
    this.#handling++;
    try {
      await work;
    } finally {
      this.#handling--;
      this.#lastSign = Date.now();
    }
  }

  /** A message or heartbeat arrived: the pull is alive. */
  alive(): void {
    this.#lastSign = Date.now();
    if (this.#stalledAt === undefined) return;
    const stalledMs = Date.now() - this.#stalledAt;
    this.#stalledAt = undefined;
    this.log.info("fact consumer resumed", { durable: this.durable, stalledMs });
  }

  stalled(reason: string, error?: unknown): void {
    this.#lastSign = Date.now();
    if (this.#stalledAt !== undefined) return;
    this.#stalledAt = Date.now();
    this.log.warn("fact consumer stalled; pulling again", { durable: this.durable, reason, error });
  }
}

/**
 * The part of nats.js's ConsumerMessages the watchdog uses. `resetPendingNoInfo` is a public
 * method of its implementation (nats.js 3.4, pinned) though not of the interface; without it a
 * stalled pull is stopped and the loop makes a new one.
 */
interface WatchedPull {
  status(): AsyncIterable<{ type: string }>;
  stop(): void;
  resetPendingNoInfo?(): Promise<boolean>;
}

/**
 * Watches a pull: heartbeats and messages count as signs of life. No sign for STALL_AFTER_MS
 * (while stalled: for REPULL_STALLED_MS), or a "no responders" answer (no leader for the
 * consumer right now), makes nats.js pull again on the same inbox without asking for the
 * consumer's info first. Same inbox: a message the server hands to an older pull still arrives
 * here instead of waiting out its ack wait. Not left to nats.js alone: its recovery asks for the
 * consumer's info and waits a whole pull expiry between tries. A pull stalled for
 * REMAKE_CHECK_MS asks `remake` (at most that often) whether its consumer is gone; when it was
 * made again, this pull ends, and the loop pulls from the new one.
 */
function watchPull(
  messages: WatchedPull,
  health: PullHealth,
  remake?: () => Promise<boolean>,
): { stop(): void } {
  const repull = (reason: string) => {
    health.stalled(reason);
    if (messages.resetPendingNoInfo) messages.resetPendingNoInfo().catch(() => {});
    else messages.stop();
  };
  (async () => {
    for await (const status of messages.status()) {
      if (status.type === "heartbeat") health.alive();
      else if (status.type === "no_responders") health.stalled("no leader answers the pull");
    }
  })().catch(() => {});
  let checkedAt = 0;
  let checking = false;
  const checkGone = () => {
    if (!remake || checking || health.stalledMs < REMAKE_CHECK_MS) return;
    if (Date.now() - checkedAt < REMAKE_CHECK_MS) return;
    checking = true;
    remake().then((made) => made && messages.stop(), () => {}).finally(() => {
      checking = false;
      checkedAt = Date.now();
    });
  };
  const timer = setInterval(() => {
    const limit = health.isStalled ? REPULL_STALLED_MS : STALL_AFTER_MS;
    if (health.silentMs > limit) repull(`no heartbeat for ${limit} ms`);
    checkGone();
  }, IDLE_HEARTBEAT_MS / 4);
  return { stop: () => clearInterval(timer) };
}
