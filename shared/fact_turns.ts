/**
 * A batch's turn: facts are handed to the consumer's `handle` one batch after another, and a
 * batch that fails keeps its turn (retried in place, after growing pauses) so the facts behind it
 * never overtake it. Transient failures are retried for as long as they last; any other failure
 * splits the batch to find the fact it fails on, and a fact that keeps failing is parked as
 * poison (see shared/consumer.ts for the whole policy).
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { FactConsumerOptions, FactsOn, HandleResult } from "./consumer.ts";
import { type BatchContext, type Delivered, fromLostStream, positionOf } from "./fact_batch.ts";
import { headersOf, park, tryPark } from "./fact_parking.ts";
import { startBatchSpans } from "./fact_telemetry.ts";
import type { Fact } from "./facts.ts";
import { LinePace, type LogFields } from "./log.ts";
import { tracing, withContext } from "./telemetry.ts";
import { isTransientFailure } from "./transient.ts";

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

/**
 * Hands `batch` over until `handle` succeeds, then acks it (parking what `handle` rejected);
 * false when it was given back instead, because the consumer stops. A batch of several facts
 * that fails otherwise than transiently is handed over again one fact at a time: the fact it
 * fails on is found, and the facts before it are not held back with it. A single fact that keeps
 * failing so is parked as poison.
 */
export async function handleInTurn<S extends string>(
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
  const pace = new LinePace(RETRY_LOG_EVERY_MS);
  return (error: unknown, fields: LogFields) => {
    if (!pace.due()) return;
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
  const pace = new LinePace(RETRY_LOG_EVERY_MS);
  const quiet = () => !pace.due();
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
