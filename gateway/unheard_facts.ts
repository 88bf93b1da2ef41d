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
 * facts than were heard since the count began, at two reads in a row (a fact is heard when it is
 * published, before the stream stores it, but a hop may be late), the cache is emptied and the
 * count begins again. Compared at the same read, not with the read before: facts stored between
 * two reads hid a gap as large under steady writes (a verification run). A stream made anew (its
 * creation time other) empties it too; a read lower than one before is a replica behind the leader
 * answering, and is passed over (taken as a new stream, it emptied the cache after each healed
 * partition). A fact heard but not yet stored (JetStream electing a leader) hides a gap until the
 * relay's retry has it stored.
 *
 * A gateway whose node is cut off cannot read the stream (no leader in touch with a quorum answers
 * on its side; see `speaksForStream`) and cannot hear what the far side stores: until 2026-12-06
 * it served the pages changed there for the whole partition, up to CACHE_TTL_MS. So reads that
 * fail UNREADABLE_AFTER times in a row suspend the cache (`unverified`: nothing served or stored,
 * every read goes to its service) until a read succeeds again; the count then begins anew. A read
 * skipped while NATS is away (the connection's own suspension, shared/fact_gaps.ts) counts for
 * nothing either way. A fact heard while the stream could not store it (no leader yet) and stored
 * after the count began anew shows as unheard: one spurious flush, never a stale page.
 *
 * The read that counts goes through the node the fact subscription hears on: on the main
 * connection, as a request whose answer proves that node reaches the stream's leader. But a
 * JetStream request on a connection whose node holds a stalled store (a full disk) stalls that
 * whole connection (shared/bus_jetstream.ts), and the gateway's main connection carries every
 * request. So each round first reads the stream on the JetStream connection: only when that got an
 * answer in time (any answer: the store is not stalled) is it read on the main connection; when it
 * did not, the round is a failed read. (A read through the JetStream connection alone, on another
 * node, proved nothing of the main one's: through a partition between the two, or between the main
 * node and the leader's, the cache served pages 2-4 s stale again and again; two reviews of the
 * second connection, 2026-12-06.) A store that stalls between the two reads still holds the main
 * connection until it goes stale (3 s); the next rounds stay off it.
 */
import { type ClusterInfo, jetstreamManager } from "@nats-io/jetstream";
import { errors as natsErrors, type Msg, type NatsConnection } from "@nats-io/nats-core";
import type { Bus } from "@shared/bus.ts";
import { causeChain } from "@shared/bus_replies.ts";
import { isStreamNotFound } from "@shared/fact_streams.ts";
import type { Logger } from "@shared/log.ts";
import { facts } from "@shared/subjects.ts";
import type { ResponseCache } from "./cache.ts";

/** How often the stream's last sequence is compared with the facts heard. */
const CHECK_MS = 2_000;
/**
 * Failed reads in a row that suspend the cache: one may be a leader election or a slow answer;
 * two (3-5 s after the stream went out of reach, at CHECK_MS and the read's 1 s timeout) are not
 * taken as chance.
 */
const UNREADABLE_AFTER = 2;
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

/** Where the count stands. */
interface Count {
  /** When the stream counted was made: another time is another stream. */
  created: string;
  /** The stream's last sequence and the facts heard when the count began. */
  baseSeq: number;
  baseHeard: number;
  /** The highest last sequence read since: a lower one is a lagging answer. */
  highestSeq: number;
  /** Facts stored and not heard at the read before (0 or less: none). */
  unheard: number;
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
  const check = new UnheardCheck(bus, cache, options.hearing, options.log);
  // A count that declined to begin reads again at once (BEGIN_TRIES): a read takes a
  // millisecond or two, and nothing is compared until the count has begun.
  const rounds = async () => {
    for (let tries = 0; tries < BEGIN_TRIES && await check.round() === "declined"; tries++);
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    rounds().catch(() => {}).finally(() => running = false);
  }, options.intervalMs ?? CHECK_MS);
  Deno.unrefTimer(timer);
  bus.nc.closed().then(() => clearInterval(timer));
}

/** The facts heard when a read of the stream was sent, and when its answer came. */
interface Heard {
  before: number;
  after: number;
}

/**
 * Reads in a row a count may decline to begin on while facts keep being heard during the read:
 * a fact heard before the stream stored it, in a count begun on a read taken in between, showed
 * later as stored and never heard (a needless flush, 2 of 10 test runs under load). Past them it
 * begins anyway, as it always did: a needless flush, never a gap hidden. A declined count reads
 * again at once (declining until the next round left 4 s uncompared, a review).
 */
const BEGIN_TRIES = 3;

/** One gateway's comparison of the fact stream with the facts it heard (see the module doc). */
class UnheardCheck {
  readonly #bus: Bus;
  readonly #cache: ResponseCache;
  readonly #hearing: FactHearing;
  readonly #log: Logger;
  readonly #stream: string;
  readonly #unreadable: Unreadable;
  #count: Count | undefined;
  #declined = 0;

  constructor(bus: Bus, cache: ResponseCache, hearing: FactHearing, log: Logger) {
    this.#bus = bus;
    this.#cache = cache;
    this.#hearing = hearing;
    this.#log = log;
    this.#stream = facts.stream(bus.prefix);
    this.#unreadable = new Unreadable(cache, log, this.#stream);
  }

  /** One comparison; "declined" when the count was to begin and did not (see BEGIN_TRIES). */
  async round(): Promise<"declined" | void> {
    if (this.#bus.reconnecting) return;
    const before = this.#hearing.count;
    const read = await readStream(this.#bus, this.#stream);
    // Counted after the answer too: every fact stored when it was read was heard by now, but for
    // a hop's delay (hence two reads in a row).
    const heard = { before, after: this.#hearing.count };
    // A read lost with the main connection is that connection's suspension (shared/fact_gaps.ts);
    // one lost with the JetStream connection alone is a failed read. "No such stream" may come
    // from a node that never had it (shared/fact_streams.ts): it does not end a suspension.
    if (read === undefined || (read.created === "" && this.#unreadable.suspended)) {
      return void (this.#bus.reconnecting || this.#unreadable.failed());
    }
    // Back from a time the stream was out of reach: the cache served nothing meanwhile.
    if (this.#unreadable.read()) return this.#begin(read, heard);
    const count = this.#count;
    // The first read, or the first since the stream was made (a gateway started before the
    // services that make it): nothing was counted yet.
    if (count === undefined || count.created === "") return this.#begin(read, heard);
    if (read.created !== count.created) return this.#flush("the stream was made anew", read, heard);
    // A replica behind the leader answered (a leader moving after a partition healed): its
    // figures say nothing; the next read asks again.
    if (read.seq < count.highestSeq) return;
    count.highestSeq = read.seq;
    const unheard = (read.seq - count.baseSeq) - (heard.after - count.baseHeard);
    if (unheard > 0 && count.unheard > 0) {
      return this.#flush(Math.min(unheard, count.unheard), read, heard);
    }
    count.unheard = unheard;
  }

  /** Begins the count at `read`, unless facts were heard while it was asked (BEGIN_TRIES). */
  #begin(read: StreamRead, heard: Heard): "declined" | void {
    if (heard.before !== heard.after && ++this.#declined < BEGIN_TRIES) {
      this.#count = undefined;
      return "declined";
    }
    this.#declined = 0;
    this.#count = {
      created: read.created,
      baseSeq: read.seq,
      baseHeard: heard.after,
      highestSeq: read.seq,
      unheard: 0,
    };
  }

  #flush(unheard: number | string, read: StreamRead, heard: Heard): "declined" | void {
    this.#cache.clear("missed_facts");
    this.#log.warn("cache emptied: the fact stream holds facts this gateway did not hear", {
      stream: this.#stream,
      unheard,
    });
    return this.#begin(read, heard);
  }
}

/** Suspends the cache while the stream cannot be read (see the module doc). */
class Unreadable {
  readonly #cache: ResponseCache;
  readonly #log: Logger;
  readonly #stream: string;
  #failures = 0;

  constructor(cache: ResponseCache, log: Logger, stream: string) {
    this.#cache = cache;
    this.#log = log;
    this.#stream = stream;
  }

  /** Whether the cache is suspended for want of a read. */
  get suspended(): boolean {
    return this.#failures >= UNREADABLE_AFTER;
  }

  /** A read failed. */
  failed(): void {
    if (++this.#failures !== UNREADABLE_AFTER) return;
    this.#cache.suspend(true, "unverified");
    this.#log.warn(
      "cache suspended: the fact stream cannot be read to tell whether facts were missed",
      { stream: this.#stream, failedReads: this.#failures },
    );
  }

  /** A read succeeded; whether it ends a suspension (then the count of facts begins anew). */
  read(): boolean {
    const suspended = this.suspended;
    this.#failures = 0;
    if (!suspended) return false;
    this.#cache.suspend(false, "unverified");
    this.#log.info("cache resumed, empty: the fact stream can be read again", {
      stream: this.#stream,
    });
    return true;
  }
}

/** What a read of the stream said: its last sequence and when it was made. */
interface StreamRead {
  seq: number;
  created: string;
}

/**
 * The stream's last sequence and creation time (0 and "" while it does not exist), as the main
 * connection's node reads it; undefined when it cannot be read, or the answer does not speak for
 * the stream (`speaksForStream`), or the JetStream connection's read got no answer in time (a
 * stalled store: the main connection is not risked; see the module doc).
 */
async function readStream(bus: Bus, stream: string): Promise<StreamRead | undefined> {
  const gate = await readOn(await bus.jetStreamConnection().catch(() => undefined), stream);
  if (gate === "unanswered") return undefined;
  const read = await readOn(bus.nc, stream);
  return read === "unanswered" ? undefined : read;
}

/**
 * One read of `stream` on `nc`: its figures, undefined for an answer that does not speak for it
 * or an error, "unanswered" when no answer came within a second (or there is no connection).
 */
async function readOn(
  nc: NatsConnection | undefined,
  stream: string,
): Promise<StreamRead | undefined | "unanswered"> {
  if (!nc) return "unanswered";
  try {
    const jsm = await jetstreamManager(nc, { timeout: 1_000, checkAPI: false });
    const info = await jsm.streams.info(stream);
    if (!speaksForStream(info.cluster)) return undefined;
    return { seq: info.state.last_seq, created: info.created };
  } catch (error) {
    if (isStreamNotFound(error)) return { seq: 0, created: "" };
    const late = causeChain(error).some((e) => e instanceof natsErrors.TimeoutError);
    return late ? "unanswered" : undefined;
  }
}

/** How recently a replica must have been heard from to count as in touch with the leader. */
const IN_TOUCH_NS = 3_000_000_000;

/**
 * Whether a stream info answer speaks for the stream: from a server of its own (no cluster), or
 * from a leader in touch with a quorum of the stream's copies. A node cut off from the rest
 * answers within seconds from its own copy, with no leader and a last sequence that no longer
 * moves; a leader cut off keeps naming itself (nats-server 2.9.10 did for over 40 s) while its
 * replicas fall silent. Taken as reads, both resumed a suspended cache 1-5 s into a partition,
 * which then served the far side's changes stale until the heal (a verification run, 2026-12-06).
 */
export function speaksForStream(cluster: ClusterInfo | undefined): boolean {
  if (!cluster) return true;
  if (!cluster.leader) return false;
  const replicas = cluster.replicas ?? [];
  const inTouch = replicas.filter((peer) => !peer.offline && peer.active < IN_TOUCH_NS).length;
  return (1 + inTouch) * 2 > 1 + replicas.length;
}
