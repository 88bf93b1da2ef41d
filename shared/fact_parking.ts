/**
 * Parking: a message that is not a fact, or a fact its handler rejected or kept failing on, is
 * copied to `<prefix>.parked.<its subject>` (a stream of its own, kept for people to inspect,
 * with headers saying why and by whom) and terminated, so it is neither lost nor retried forever.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { headers, type MsgHdrs } from "@nats-io/nats-core";
import type { Bus } from "./bus.ts";
import { type BatchContext, fromLostStream, positionOf } from "./fact_batch.ts";
import { ensureStream } from "./fact_streams.ts";
import { scrub } from "./log.ts";
import { facts } from "./subjects.ts";

/** How long a message that could not be parked waits before it is delivered again. */
export const PARK_RETRY_MS = 5_000;

export async function ensureParkedStream(bus: Bus): Promise<void> {
  await ensureStream(bus, {
    name: facts.parkedStream(bus.prefix),
    subjects: [bus.subject(facts.parked)],
    num_replicas: bus.factsReplicas,
  });
}

/**
 * A message's headers, or none when nats.js cannot read them (a name with a space, which the
 * server carries as it is; nats.js reads them only when asked, and throws): read unguarded, such
 * a message could never be parked (it came back every 5 s for good), and with tracing on a valid
 * fact failed every attempt and then its parking, in place, for good (a review).
 */
export function headersOf(msg: JsMsg): MsgHdrs | undefined {
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
export async function tryPark<S extends string>(
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
export async function park<S extends string>(
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
