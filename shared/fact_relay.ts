/**
 * The relay: publishes each service's outbox (facts recorded with their change, shared/facts.ts)
 * to JetStream, in order, with the fact id as message id so a re-publish is de-duplicated, and
 * deletes what the stream took. One drain at a time across a service's instances (row locks), a
 * fact NATS cannot carry set aside (`outbox_oversized`), the backlog measured, and why a publish
 * failed told in an operator's words (`publishFailureCause`).
 */
import { headers } from "@nats-io/nats-core";
import { jetstream, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { errors as natsErrors, type NatsConnection } from "@nats-io/nats-core";
import type { Bus } from "./bus.ts";
import { companionClient, metricsClient, type Queryable, type Sql, type Tx } from "./db.ts";
import { noteDatabaseError } from "./db_watch.ts";
import { PayloadTooLargeError } from "./errors.ts";
import type { FactType } from "./fact_catalog.ts";
import { facts } from "./subjects.ts";
import type { Logger } from "./log.ts";
import { metrics } from "./metrics.ts";
import { tracing } from "./telemetry.ts";
import { type OutboxEntry, tracePublish } from "./fact_telemetry.ts";
import { CLOUDEVENTS_JSON, type Fact } from "./facts.ts";
import { ensureFactStream, isStreamNotFound } from "./fact_streams.ts";
import { type AnnouncedIds, keepIdsPastFacts } from "./announced_ids.ts";
/** Structured mode: the whole CloudEvent is the body, the header says so. */
function cloudEventHeaders() {
  const h = headers();
  h.set("content-type", CLOUDEVENTS_JSON);
  return h;
}

/** How long a drain waits for the rows another instance's drain holds (see `#drain`). */
const DRAIN_LOCK_WAIT = "2s";
/** How long a drain may hold its rows while Postgres hears nothing from it (see `#drain`). */
const DRAIN_HOLD_LIMIT = "15s";
/** How long stopping a relay waits for the facts recorded so far to be published. */
const STOP_FLUSH_MS = 2_000;
/** How long stopping a relay then lets its own connection finish what it runs (seconds). */
const STOP_END_SECONDS = 1;
/** Postgres' lock_not_available: another instance's drain holds the rows (see `#drain`). */
const LOCK_NOT_AVAILABLE = "55P03";
/**
 * How long a batch may go without an answer before the relay gives up on it and tries again on
 * another connection: past what a healthy batch can take (its lock wait, a statement timeout and a
 * publish timeout), and past DRAIN_HOLD_LIMIT, by when Postgres has released its rows. A host lost
 * without a word (no FIN, no RST) left the batch waiting until the kernel gave up on the
 * connection, over ten minutes, and the relay published nothing meanwhile (found by a review).
 */
const BATCH_GIVE_UP_MS = 20_000;

/**
 * How long a batch starts publishing facts (one after another: see `#publishInOrder`); the rest
 * wait for the next batch. With a publish's own timeout (5 s), well within DRAIN_HOLD_LIMIT.
 */
const PUBLISH_BUDGET_MS = 5_000;

/**
 * After a publish JetStream left unanswered (its stream's leader without a quorum: this node cut
 * off from the rest of the cluster, or a leader moving), how long the relay leaves the outbox to
 * the other instances before it tries again, and how long each of its publishes then waits. A
 * relay cut off with its node took the oldest rows, waited out a publish's 5 s and took them again
 * at once: the instances on the healthy side, which wait for those rows to keep the facts in
 * order, published only in the gaps, and every subscriber got its facts 3.6 s late, up to 11.5 s,
 * for as long as the partition lasted (a partition review, 2026-12-06).
 */
const UNANSWERED_PAUSE_MS = 2_000;
const DOUBTFUL_PUBLISH_TIMEOUT_MS = 1_000;

/** Whether JetStream left a publish unanswered (nobody took it, or no acknowledgement came). */
function unanswered(error: unknown): boolean {
  return inChain(error, (e) => (e as Error).name === "JetStreamNotEnabled") ||
    inChain(error, (e) => e instanceof natsErrors.NoRespondersError) ||
    inChain(error, (e) => e instanceof natsErrors.TimeoutError);
}

/** What one batch of the relay did. */
interface DrainedBatch {
  more: boolean;
  setAside: OversizedFact[];
  /** How many facts JetStream took. */
  published: number;
  /** What JetStream answered the fact it refused; those published before it are removed. */
  refused?: { error: unknown };
}

/** A batch that got no answer in time (see BATCH_GIVE_UP_MS). */
class BatchUnansweredError extends Error {}

/** `work`'s outcome, or a `BatchUnansweredError` once `ms` have passed without one. */
async function answeredWithin<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() =>
      reject(
        new BatchUnansweredError(
          `Cannot publish facts: no answer within ${ms} ms (Postgres or NATS lost without a word)`,
        ),
      ), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How many facts a drain takes at a time. */
const DRAIN_BATCH = 200;
/**
 * How many payload bytes (as Postgres prints them) a drain takes at most, the first fact always:
 * 200 facts near max_payload (events with descriptions of a megabyte, piled up while NATS was
 * away) were read, stringified and encoded at once, hundreds of MiB in one service's memory.
 */
const DRAIN_BYTES = 8 * 1024 * 1024;
/** Room for a fact's headers (content type, message id, trace context) within max_payload. */
const FACT_HEADER_ALLOWANCE = 1024;

/** An outbox row as the relay reads it. */
interface OutboxRow {
  seq: string;
  id: string;
  subject: string;
  payload: unknown;
  trace_context: unknown;
}

/**
 * Locks the oldest facts of the outbox (DRAIN_BATCH at most) and returns, in order, those whose
 * payloads with the ones before them take at most `maxBytes` (the first always, however large:
 * one alone is bounded by max_payload, or set aside); `more` when the outbox may hold more than
 * were returned. The facts locked and not returned stay for the next batch. One statement:
 * Postgres allows no window function beside `for update`, hence the CTEs.
 */
export async function takeOutboxBatch(
  tx: Queryable,
  maxBytes = DRAIN_BYTES,
): Promise<{ rows: OutboxRow[]; more: boolean }> {
  const found = await tx<(OutboxRow & { locked: number })[]>`
    with locked as (select seq from outbox order by seq limit ${DRAIN_BATCH} for update),
    sized as (
      select o.seq, sum(octet_length(o.payload::text)) over (order by o.seq) as upto,
        row_number() over (order by o.seq) as n
      from outbox o join locked l on l.seq = o.seq
    )
    select o.seq, o.id, o.subject, o.payload, o.trace_context,
      (select count(*) from locked)::int as locked
    from outbox o join sized s on s.seq = o.seq
    where s.n = 1 or s.upto <= ${maxBytes}
    order by o.seq`;
  const locked = found[0]?.locked ?? 0;
  const rows = found.map(({ locked: _, ...row }) => row);
  return { rows, more: locked === DRAIN_BATCH || rows.length < locked };
}

/** A fact NATS cannot carry: its body's size, and the most the bus takes. */
interface OversizedFact {
  row: OutboxRow;
  bytes: number;
  limit: number;
}

/**
 * The largest fact body `nc` carries (its server's max_payload, less room for headers), or
 * undefined while no server has said (reconnecting): a guess, such as NATS's default, would
 * refuse or set aside facts that a server with a raised max_payload takes.
 */
function factBodyLimit(nc: NatsConnection): number | undefined {
  const max = nc.info?.max_payload;
  return max === undefined ? undefined : max - FACT_HEADER_ALLOWANCE;
}

const encoder = new TextEncoder();

/** Publishes what the outbox holds, oldest first; safe with several instances running. */
export class FactRelay {
  readonly #sql: Sql;
  readonly #bus: Bus;
  readonly #log: Logger;
  #running: Promise<void> | undefined;
  #again = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unwatch: (() => void) | undefined;
  /** The cause last logged, so a long outage logs once, not at every retry. */
  #failing: string | undefined;
  /** The relay's own connection (see `#connection`), made at the first batch. */
  #own: Sql | undefined;
  /** Set by `stop()`: a batch after it runs on the pool, with no own connection left to end. */
  #stopped = false;
  /** No drain before this (`performance.now()`): JetStream left a publish unanswered. */
  #pausedUntil = 0;
  /** A publish went unanswered, and JetStream has taken no fact from this relay since. */
  #doubtful = false;

  constructor(sql: Sql, bus: Bus, log: Logger) {
    this.#sql = sql;
    this.#bus = bus;
    this.#log = log;
  }

  /**
   * Returns the fact when NATS can carry it, throws `PayloadTooLargeError` (413) otherwise: a
   * change whose fact can never be published must not commit (subscribers would never learn
   * of it).
   */
  carried<K extends FactType>(fact: Fact<K>): Fact<K> {
    // The main connection's server says it at once (the facts go on the JetStream connection, to
    // a server of the same cluster). Unknown while reconnecting: the relay sets such a fact aside
    // if it does not fit.
    const limit = factBodyLimit(this.#bus.nc);
    if (limit !== undefined && encoder.encode(JSON.stringify(fact)).length > limit) {
      throw new PayloadTooLargeError(
        `Cannot record fact ${fact.type}: it is larger than the bus carries (${limit} bytes)`,
      );
    }
    return fact;
  }

  /** Publishes soon, without waiting: the request path never waits on JetStream. */
  kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Resolves when everything recorded so far has been published (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
    await this.#drain({ evenIfPaused: true });
  }

  /**
   * Also retries on a timer, for facts left behind by a crash or an unreachable NATS; and
   * reports the backlog as metrics.
   */
  start(intervalMs = 1000): void {
    this.#timer = setInterval(() => this.kick(), intervalMs);
    this.#unwatch = watchOutbox(this.#sql);
  }

  /**
   * Stops the timer and publishes what is recorded, for at most `withinMs`: with JetStream
   * refusing facts, each drain waited out its publish timeout (5 s) and a SIGTERM took over 10 s,
   * past a container runtime's usual grace. What is not published stays in the outbox for the
   * next start (a fact published twice is de-duplicated by its id).
   */
  async stop(withinMs = STOP_FLUSH_MS): Promise<void> {
    clearInterval(this.#timer);
    this.#unwatch?.();
    this.#stopped = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => timer = setTimeout(resolve, withinMs, "late"));
    const flushed = this.flush().then(() => "flushed" as const, (error) => {
      this.#log.warn("facts not yet published; they stay in the outbox", { error });
      return "failed" as const;
    });
    const outcome = await Promise.race([flushed, late]);
    clearTimeout(timer);
    if (outcome === "late") {
      this.#log.warn("facts not yet published; they stay in the outbox", { withinMs });
    }
    // Bounded even after a flush: a batch kicked meanwhile may wait on the connection while
    // postgres.js reconnects it to a Postgres that is gone, for good (a catalog never exited
    // once `deno task start` and its own Postgres stopped together, 2026-12-05).
    await this.#dropConnection(outcome === "late" ? 0 : STOP_END_SECONDS);
  }

  /**
   * Where batches run: a connection of the relay's own, beside the service's pool, so that a
   * batch given up (a host lost without a word) can take its silent connection with it. Through
   * the pool, the given-up batch kept holding its connection and each next batch went to another
   * of the pool's connections, as silent, and waited out its own give-up: ten connections, over
   * three minutes without a fact published (CI saw two). The pool itself for a pool not opened
   * by `openDatabase`, and once stopped (a batch then has no own connection left to end it).
   */
  #connection(): Sql {
    if (this.#stopped && this.#own === undefined) return this.#sql;
    return this.#own ??= companionClient(this.#sql, "relay", { idleTimeout: 60 }) ?? this.#sql;
  }

  /** Ends the relay's own connection, if any: the next batch connects anew. */
  async #dropConnection(timeoutSeconds?: number): Promise<void> {
    const own = this.#own;
    this.#own = undefined;
    if (own === undefined || own === this.#sql) return;
    await own.end({ timeout: timeoutSeconds }).catch(() => {});
  }

  async #drain({ evenIfPaused = false } = {}): Promise<void> {
    // Left to the other instances for a while after JetStream left a publish unanswered (see
    // UNANSWERED_PAUSE_MS); the timer's next tick tries again. Not a flush: it tries now.
    if (!evenIfPaused && performance.now() < this.#pausedUntil) return;
    let published = 0;
    try {
      for (;;) {
        const limit = factBodyLimit(await this.#bus.jetStreamConnection());
        if (limit === undefined) throw new Error("Cannot publish facts: not connected to NATS");
        const batch = await answeredWithin(
          this.#connection().begin((tx) => this.#drainBatch(tx, limit)),
          BATCH_GIVE_UP_MS,
        );
        const { more, setAside, refused } = batch;
        published += batch.published;
        // Logged once committed: a batch tried again (JetStream down) would log them again.
        for (const fact of setAside) this.#reportSetAside(fact);
        if (refused) {
          if (unanswered(refused.error)) {
            this.#pausedUntil = performance.now() + UNANSWERED_PAUSE_MS;
          }
          throw refused.error;
        }
        if (!more) break;
      }
      // Only a fact JetStream took says it answers again: an outbox another instance had emptied
      // said nothing, and the next publish of a relay still cut off waited its whole 5 s again
      // (a partition review's verification, 2026-12-06).
      if (published === 0) return;
      if (this.#failing !== undefined) this.#log.info("publishing facts again");
      this.#failing = undefined;
      this.#doubtful = false;
    } catch (error) {
      // Another instance is publishing these facts: no failure, the next kick or tick goes on.
      if ((error as { code?: unknown })?.code === LOCK_NOT_AVAILABLE) return;
      // An idle service learns of a lost Postgres here first (logged once, in db.ts).
      noteDatabaseError(this.#sql, error);
      // Not awaited: a silent connection's end would wait, and the next batch need not.
      if (error instanceof BatchUnansweredError) void this.#dropConnection(0);
      const cause = await this.#reportFailure(error);
      // The stream is gone (a lost JetStream store: NATS started again on an empty volume, or
      // removed by hand): made again as at start. Before, every fact recorded since stayed in
      // the outbox until the service was restarted (found by a review).
      if (cause === streamMissing(this.#bus)) {
        await ensureFactStream(this.#bus).catch((error) =>
          this.#log.warn("cannot make the fact stream again; will retry", { error })
        );
      }
    }
  }

  /**
   * Publishes the oldest facts of the outbox, one after another, and removes those published;
   * says whether more wait, which were set aside, and what JetStream refused, if it did.
   */
  async #drainBatch(tx: Tx, limit: number): Promise<DrainedBatch> {
    // Waits for rows another instance's relay holds (it is publishing them) instead of
    // skipping them: skipped, later facts went out first, and a resource's facts could
    // reach subscribers out of order when a service ran several instances. Bounded both
    // ways: this wait (a lock timeout: tried again at the next kick or tick), and how long a
    // drain may hold its rows without a word to Postgres (a frozen instance's drain is
    // ended, its rows released), longer than a publish waits for JetStream.
    await tx`select set_config('lock_timeout', ${DRAIN_LOCK_WAIT}, true),
      set_config('idle_in_transaction_session_timeout', ${DRAIN_HOLD_LIMIT}, true)`;
    const { rows, more } = await takeOutboxBatch(tx);
    const bodies = rows.map((row) => JSON.stringify(row.payload));
    const oversized = rows.map((row, i) => ({
      row,
      bytes: encoder.encode(bodies[i]).length,
      limit,
    }))
      .filter(({ bytes }) => bytes > limit);
    // Checked before any is published: the client refuses such a fact at every attempt, and
    // the facts published beside it went out ahead of it while its batch never left.
    await this.#setAside(tx, oversized);
    const skipped = new Set(oversized.map(({ row }) => row));
    const done = oversized.map(({ row }) => row);
    const refused = await this.#publishInOrder(rows, bodies, skipped, done);
    if (done.length) await tx`delete from outbox where seq in ${tx(done.map((r) => r.seq))}`;
    return {
      more: more || done.length < rows.length,
      setAside: oversized,
      published: done.length - oversized.length,
      refused,
    };
  }

  /**
   * Publishes `rows` (but `skipped`) one after another, each once the one before it is stored,
   * adding each to `done`; stops at the first JetStream refuses (returned) or once PUBLISH_BUDGET_MS
   * have passed. Published all at once, a refused fact (a leader stepping down, a connection lost
   * with it on the wire) went out again after the ones behind it, which JetStream had taken: a
   * resource's facts reached subscribers out of order (until 2026-12-04, a review).
   */
  async #publishInOrder(
    rows: OutboxRow[],
    bodies: string[],
    skipped: Set<OutboxRow>,
    done: OutboxRow[],
  ): Promise<{ error: unknown } | undefined> {
    const js = jetstream(await this.#bus.jetStreamConnection());
    const until = Date.now() + PUBLISH_BUDGET_MS;
    // Until JetStream takes a fact again, a publish waits less (see UNANSWERED_PAUSE_MS).
    const timeout = this.#doubtful ? DOUBTFUL_PUBLISH_TIMEOUT_MS : undefined;
    for (const [i, row] of rows.entries()) {
      if (skipped.has(row)) continue;
      if (Date.now() > until) return;
      const headers = cloudEventHeaders();
      const subject = this.#bus.subject(row.subject);
      const publish = () => js.publish(subject, bodies[i], { msgID: row.id, headers, timeout });
      try {
        const entry = row as unknown as OutboxEntry;
        await (tracing ? tracePublish(entry, subject, headers, publish) : publish());
      } catch (error) {
        this.#doubtful ||= unanswered(error);
        return { error };
      }
      done.push(row);
    }
  }

  /**
   * Moves facts NATS cannot carry to `outbox_oversized`: they would hold up every fact behind
   * them for good. Once max_payload is raised, the operator moves them back into the outbox.
   */
  async #setAside(tx: Tx, oversized: OversizedFact[]): Promise<void> {
    for (const { row, bytes } of oversized) {
      await tx`insert into outbox_oversized
        (seq, id, subject, payload, trace_context, recorded_at, bytes)
        select seq, id, subject, payload, trace_context, recorded_at, ${bytes}
        from outbox where seq = ${row.seq}`;
    }
  }

  #reportSetAside({ row, bytes, limit }: OversizedFact): void {
    this.#log.error(
      "a fact is larger than NATS carries; set aside in outbox_oversized, the facts behind it go on",
      { id: row.id, subject: row.subject, bytes, limit },
    );
  }

  /** Logs why a drain failed (once per cause); returns the cause. */
  async #reportFailure(error: unknown): Promise<string> {
    const cause = await publishFailureCause(this.#bus, error).catch(() => "unknown");
    if (cause === this.#failing) return cause;
    this.#failing = cause;
    this.#log.warn(`cannot publish facts yet (${cause}); will retry`, { error });
    return cause;
  }
}

const backlog = metrics.gauge(
  "oe_outbox_backlog",
  "Facts recorded and not yet published to JetStream (the same table for every instance)",
);
const oldest = metrics.gauge(
  "oe_outbox_oldest_age_seconds",
  "Age of the oldest fact not yet published (0 when none waits)",
);
const setAside = metrics.gauge(
  "oe_outbox_set_aside",
  "Facts larger than NATS carries, set aside in outbox_oversized (subscribers miss them until " +
    "they are moved back)",
);

/** Reads the outbox's backlog before each metrics snapshot; returns how to stop. */
function watchOutbox(sql: Sql): () => void {
  // Made here, not at import: a process without an outbox (audit) shows no backlog at all.
  const [waiting, age, aside] = [backlog.series(), oldest.series(), setAside.series()];
  return metrics.collect("outbox", async () => {
    // Apart from the pool (db.ts): through it, the read waited behind the requests filling it.
    const [row] = await (metricsClient(sql) ?? sql)`select count(*)::int as waiting,
      coalesce(extract(epoch from now() - min(recorded_at)), 0)::float8 as age,
      (select count(*)::int from outbox_oversized) as aside from outbox`;
    waiting.set(row.waiting);
    age.set(row.age);
    aside.set(row.aside);
  });
}

function inChain(error: unknown, found: (e: unknown) => boolean): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as Error).cause, depth++) {
    if (found(e)) return true;
  }
  return false;
}

/** `publishFailureCause` when the fact stream does not exist. */
function streamMissing(bus: Bus): string {
  return `stream ${facts.stream(bus.prefix)} does not exist`;
}

/**
 * Why JetStream did not take a fact, in words an operator can act on. nats.js calls every
 * unanswered publish "jetstream is not enabled", which is rarely the case: usually the stream
 * has no leader for a moment (its node went away) or too few of its replicas are up.
 */
export async function publishFailureCause(bus: Bus, error: unknown): Promise<string> {
  if (error instanceof JetStreamApiError) return `JetStream refused the fact: ${error.message}`;
  if (!unanswered(error)) return error instanceof Error ? error.message : String(error);
  const late = inChain(error, (e) => e instanceof natsErrors.TimeoutError);
  const stream = facts.stream(bus.prefix);
  try {
    const jsm = await jetstreamManager(await bus.jetStreamConnection(), { timeout: 1000 });
    const info = await jsm.streams.info(stream);
    const replicas = info.config.num_replicas ?? 1;
    if (!info.cluster?.leader) {
      return `stream ${stream} has no leader (electing one, or too few of its ${replicas} ` +
        `replicas are up)`;
    }
    return `stream ${stream} (leader ${info.cluster.leader}) did not ${
      late ? "acknowledge in time" : "answer"
    }: its leader is moving or its node went away`;
  } catch (probe) {
    if (isStreamNotFound(probe)) return streamMissing(bus);
    if (probe instanceof JetStreamApiError) return `stream ${stream} unavailable: ${probe.message}`;
    return "JetStream does not answer: no JetStream leader (too few cluster nodes up) " +
      "or JetStream not enabled on the server";
  }
}

/**
 * Makes sure the fact stream exists and that no id it announced for `ids`' tables is handed out
 * again (shared/announced_ids.ts), then starts publishing the service's outbox.
 */
export async function startFactRelay(
  sql: Sql,
  bus: Bus,
  log: Logger,
  ids: AnnouncedIds[],
): Promise<FactRelay> {
  await ensureFactStream(bus);
  await keepIdsPastFacts(sql, bus, ids, log);
  const relay = new FactRelay(sql, bus, log);
  relay.start();
  // Facts a crash left behind go out now, not at the first tick.
  relay.kick();
  return relay;
}
