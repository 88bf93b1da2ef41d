/**
 * Facts the fact stream stored that this gateway never heard. A partition between NATS nodes (the
 * gateway's node cut off from the one its writes' services publish through) loses them without
 * touching the gateway's own connection, so nothing else tells the cache (shared/fact_gaps.ts
 * follows the connection only), and it served pages those facts would have dropped until
 * CACHE_TTL_MS: 43 s after a partition healed, with no word of it (a partition review,
 * 2026-12-06).
 *
 * So the gateway counts the distinct facts it hears (by their message id: a fact published again
 * is stored once), and every CHECK_MS reads the stream's last sequence: once the stream holds more
 * facts than were heard since the count began, as of the read before (a fact is heard when it is
 * published, before the stream's answer; the round between is the grace), the cache is emptied
 * and the count begins again. A stream made anew (its sequence lower) empties it too. A read that
 * fails (NATS away: the cache is suspended meanwhile; JetStream without a leader) waits for the
 * next. A fact heard but never stored would hide one lost later; none is: the relay publishes
 * each until the stream has it.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/nats-core";
import type { Bus } from "@shared/bus.ts";
import { isStreamNotFound } from "@shared/fact_streams.ts";
import type { Logger } from "@shared/log.ts";
import { facts } from "@shared/subjects.ts";
import type { ResponseCache } from "./cache.ts";

/** How often the stream's last sequence is compared with the facts heard. */
export const CHECK_MS = 2_000;
/** How many fact ids are remembered to count one heard twice once. */
const IDS_KEPT = 10_000;

/** The distinct facts a gateway heard. */
export class FactHearing {
  #count = 0;
  readonly #recent = new Set<string>();

  /** A message heard on the fact subjects. */
  heard(msg: Msg): void {
    const id = msg.headers?.get("Nats-Msg-Id");
    if (id) {
      if (this.#recent.has(id)) return;
      this.#recent.add(id);
      // A Set iterates in insertion order: the first is the oldest.
      if (this.#recent.size > IDS_KEPT) this.#recent.delete(this.#recent.values().next().value!);
    }
    this.#count++;
  }

  /** How many distinct facts were heard so far. */
  get count(): number {
    return this.#count;
  }
}

/** Where the count stands: the stream's last sequence and the facts heard when it began. */
interface Count {
  baseSeq: number;
  baseHeard: number;
  /** The stream's last sequence at the read before. */
  previousSeq: number;
}

/**
 * Empties `cache` whenever the fact stream stored facts `hearing` did not hear (see the module
 * doc), every `intervalMs`, for as long as the bus's connection lasts.
 */
export function emptyOnUnheardFacts(
  bus: Bus,
  cache: ResponseCache,
  options: { hearing: FactHearing; log: Logger; intervalMs?: number },
): void {
  const { hearing, log } = options;
  const stream = facts.stream(bus.prefix);
  let count: Count | undefined;
  const restart = (seq: number) =>
    count = { baseSeq: seq, baseHeard: hearing.count, previousSeq: seq };
  const round = async () => {
    if (bus.reconnecting) return;
    const seq = await lastSequence(bus, stream);
    if (seq === undefined) return;
    if (count === undefined) return void restart(seq);
    const stored = count.previousSeq - count.baseSeq;
    const heard = hearing.count - count.baseHeard;
    if (seq < count.baseSeq || heard < stored) {
      cache.clear("missed_facts");
      log.warn("cache emptied: the fact stream holds facts this gateway did not hear", {
        stream,
        unheard: seq < count.baseSeq ? "the stream was made anew" : stored - heard,
      });
      return void restart(seq);
    }
    count.previousSeq = seq;
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    round().catch(() => {}).finally(() => running = false);
  }, options.intervalMs ?? CHECK_MS);
  Deno.unrefTimer(timer);
  bus.nc.closed().then(() => clearInterval(timer));
}

/** The stream's last sequence (0 while it does not exist); undefined when it cannot be read. */
async function lastSequence(bus: Bus, stream: string): Promise<number | undefined> {
  try {
    const jsm = await jetstreamManager(bus.nc, { timeout: 1_000, checkAPI: false });
    return (await jsm.streams.info(stream)).state.last_seq;
  } catch (error) {
    return isStreamNotFound(error) ? 0 : undefined;
  }
}
