/**
 * A durable consumer's ledger: the stream sequences its instances settled (handled, parked or
 * skipped), kept in the consuming service's own database, and a reconciler that finds the facts
 * the server counts as settled that no instance settled, and hands them over late.
 *
 * Why: nats-server before 2.11 may skip a fact of a replicated consumer for good when the
 * consumer's leader loses its quorum (nats-io/nats-server#6566; shared/server_defects.ts), and
 * nothing then says so: no pending, no redelivery, its acknowledgement floor past it. A chaos and
 * a partition review (2026-12-06) saw audit's activity log and the discounts' projection of
 * events miss facts that way. A consumer cannot tell such a fact from one another instance
 * handled: the server's floor is all the instances share, so the instances write down what they
 * settle, and one of them at a time compares the stream with it.
 *
 * The reconciler checks, every `intervalMs`, the stream's facts on the consumer's subject up to
 * the acknowledgement floor read one round earlier (the grace: an instance writes what it settled
 * just after acknowledging it), above what was checked before; each fact missing from the ledger
 * is handed to `handle` (idempotent, as for any redelivery) and written down, and a warning says
 * so. Then the ledger forgets what it checked. A stream made anew (its sequences start again)
 * starts the ledger again. A consumer that starts on an existing durable checks from where it
 * stands: what came before the ledger was not written down.
 *
 * @example
 * ```ts ignore
 * const consumer = await consumeFacts(bus, { durable: "audit", ledger: sql, ... });
 * ```
 */
import { DeliverPolicy, jetstream, type JetStreamManager } from "@nats-io/jetstream";
import type { Bus } from "./bus.ts";
import type { Queryable, Sql } from "./db.ts";
import type { Fact } from "./facts.ts";
import type { Logger } from "./log.ts";

/** Makes the ledger's tables in a service's schema (shared/facts.ts `migrateWithOutbox`). */
export async function installFactLedger(tx: Queryable): Promise<void> {
  await tx`create table if not exists fact_ledger (
    durable text not null,
    seq bigint not null,
    primary key (durable, seq)
  )`;
  await tx`create table if not exists fact_ledger_checks (
    durable text primary key,
    stream_created text not null,
    checked_upto bigint not null
  )`;
}

/** How often the reconciler compares the stream with the ledger, by default. */
export const RECONCILE_MS = 10_000;
/**
 * Most sequences one round checks: after a long time without a round (every instance down), the
 * rest waits for the next ones rather than one transaction reading the headers of a million facts.
 */
const CHECKED_PER_ROUND = 10_000;
/** How long the settled sequences wait to be written, at most (one insert for many). */
const WRITE_AFTER_MS = 50;

/** What the reconciler needs of its consumer. */
export interface LedgerTarget {
  bus: Bus;
  jsm: JetStreamManager;
  stream: string;
  durable: string;
  /** The consumer's subject filter, with the bus prefix. */
  subject: string;
  /** When the stream followed now was made (another time: another stream). */
  streamCreated: () => string;
  /** Hands a fact over as the consumer does; false when the message is no fact to hand over. */
  handOver: (msg: { data: Uint8Array; subject: string }) => Promise<Fact | undefined>;
  log: Logger;
}

/** The sequences this instance settled, written to the service's database in batches. */
export class FactLedger {
  readonly #sql: Sql;
  readonly #durable: string;
  readonly #log: Logger;
  #waiting: number[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failingSince = 0;

  constructor(sql: Sql, durable: string, log: Logger) {
    this.#sql = sql;
    this.#durable = durable;
    this.#log = log;
  }

  /** The fact at stream sequence `seq` was settled by this instance. */
  settled(seq: number): void {
    this.#waiting.push(seq);
    this.#timer ??= setTimeout(() => void this.flush(), WRITE_AFTER_MS);
  }

  /**
   * Writes what waits. A failure keeps it for the next write: a sequence never written is
   * handed over again by the reconciler, which a handler takes as a redelivery.
   */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const seqs = this.#waiting;
    this.#waiting = [];
    this.#writing = this.#writing.then(() => this.#write(seqs));
    return this.#writing;
  }

  async #write(seqs: number[]): Promise<void> {
    if (!seqs.length) return;
    try {
      await this.#sql`insert into fact_ledger (durable, seq)
        select ${this.#durable}, unnest(${seqs}::bigint[]) on conflict do nothing`;
      this.#failingSince = 0;
    } catch (error) {
      this.#waiting.push(...seqs);
      this.#timer ??= setTimeout(() => void this.flush(), 1_000);
      if (this.#failingSince) return;
      this.#failingSince = Date.now();
      this.#log.warn("cannot write the facts settled to the ledger yet; will retry", { error });
    }
  }

  /** Written sequences in (`after`, `upTo`]. */
  async written(tx: Queryable, after: number, upTo: number): Promise<Set<number>> {
    const rows = await tx<{ seq: string }[]>`select seq from fact_ledger
      where durable = ${this.#durable} and seq > ${after} and seq <= ${upTo}`;
    return new Set(rows.map((row) => Number(row.seq)));
  }

  /** Runs `reconcile` every `intervalMs` (see the module doc); returns how to stop. */
  reconcileEvery(target: LedgerTarget, intervalMs = RECONCILE_MS): () => Promise<void> {
    let previousFloor: number | undefined;
    let running: Promise<void> = Promise.resolve();
    const round = async () => {
      const info = await target.jsm.consumers.info(target.stream, target.durable);
      const checkUpTo = previousFloor;
      previousFloor = info.ack_floor.stream_seq;
      if (checkUpTo !== undefined) await this.#reconcile(target, checkUpTo);
    };
    const timer = setInterval(() => {
      running = running.then(round).catch((error) =>
        target.log.warn("cannot compare the fact stream with the ledger yet; will retry", {
          durable: target.durable,
          error,
        })
      );
    }, intervalMs);
    return async () => {
      clearInterval(timer);
      await running;
      await this.flush();
    };
  }

  /** One round: the facts in (checked, `floor`] on the consumer's subject the ledger lacks. */
  async #reconcile(target: LedgerTarget, floor: number): Promise<void> {
    const created = target.streamCreated();
    await this.#sql.begin(async (tx) => {
      const checked = await this.#claimChecks(tx, created, floor);
      if (checked === undefined || floor <= checked) return;
      const upTo = Math.min(floor, checked + CHECKED_PER_ROUND);
      const inStream = await sequencesOn(target, checked, upTo);
      const written = await this.written(tx, checked, upTo);
      for (const seq of inStream.filter((seq) => !written.has(seq))) {
        await this.#handOverLate(target, seq);
      }
      await tx`update fact_ledger_checks set checked_upto = ${upTo}
        where durable = ${this.#durable}`;
      await tx`delete from fact_ledger where durable = ${this.#durable} and seq <= ${upTo}`;
    });
  }

  /**
   * Where this durable's checks stand, its row locked for this round; undefined when there is
   * nothing to check now: another instance checks (its row locked), or the ledger starts here
   * (its first round, or the stream made anew), checked up to `upTo`.
   */
  async #claimChecks(tx: Queryable, created: string, upTo: number): Promise<number | undefined> {
    const started = await tx`insert into fact_ledger_checks (durable, stream_created, checked_upto)
      values (${this.#durable}, ${created}, ${upTo}) on conflict do nothing returning durable`;
    if (started.length) return undefined;
    const [row] = await tx<{ stream_created: string; checked_upto: string }[]>`
      select stream_created, checked_upto from fact_ledger_checks
      where durable = ${this.#durable} for update skip locked`;
    if (!row) return undefined;
    if (row.stream_created === created) return Number(row.checked_upto);
    await tx`delete from fact_ledger where durable = ${this.#durable}`;
    await tx`update fact_ledger_checks set stream_created = ${created}, checked_upto = ${upTo}
      where durable = ${this.#durable}`;
    return undefined;
  }

  /** Hands over the fact at `seq`, which no instance settled, and writes it down. */
  async #handOverLate(target: LedgerTarget, seq: number): Promise<void> {
    const msg = await target.jsm.streams.getMessage(target.stream, { seq });
    const fact = msg && await target.handOver(msg);
    target.log.warn("handed over a fact the server counted as settled that no instance settled", {
      durable: target.durable,
      sequence: seq,
      ...(fact ? { id: fact.id, type: fact.type } : {}),
    });
    await this.#sql`insert into fact_ledger (durable, seq) values (${this.#durable}, ${seq})
      on conflict do nothing`;
  }
}

/**
 * The sequences of the stream's messages on the consumer's subject in (`after`, `upTo`]: read
 * through an ordered consumer of their headers only, not fact by fact.
 */
async function sequencesOn(target: LedgerTarget, after: number, upTo: number): Promise<number[]> {
  const consumer = await jetstream(target.bus.nc).consumers.get(target.stream, {
    filter_subjects: target.subject,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: after + 1,
    headers_only: true,
  });
  const seqs: number[] = [];
  try {
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
      let last: { seq: number; pending: number } | undefined;
      for await (const msg of batch) {
        if (msg.seq <= upTo) seqs.push(msg.seq);
        last = { seq: msg.seq, pending: msg.info.pending };
        if (msg.seq >= upTo || msg.info.pending === 0) break;
      }
      if (!last || last.seq >= upTo || last.pending === 0) return seqs;
    }
  } finally {
    // Ephemeral: the server would remove it once idle; removed now, it costs nothing meanwhile.
    await consumer.delete().catch(() => {});
  }
}
