/**
 * A durable fact consumer's position kept in the consuming service's own database, beside what
 * its facts made there, so that the database can say when it is behind the consumer: restored
 * from a backup, or on a standby promoted after a failover that lost its last commits. JetStream
 * keeps the durable's position past everything the database held then, and it would never hand
 * those facts over again (a deleted event's codes stayed live for good after a restore: the
 * backup-and-restore review of 2026-12-06). With the position kept here, the consumer replays what
 * the database lacks at its next start (shared/consumer.ts, `catchUp`).
 *
 * Each row holds two sequences of the stream (told apart by its `created`): the highest fact
 * settled (handled, parked or skipped) and where a replay must start (`resumeAt`: every fact
 * before it was settled, so committed, when the row was written). A backup holds a row written
 * before it was taken, so everything before that row's `resumeAt` too. Rows only move forward:
 * several instances of a service share one durable consumer and write one row.
 *
 * @example
 * ```ts ignore
 * await consumeFacts(bus, { durable: "discounts-catalog", keptIn: keptPositions(sql, log), ... });
 * ```
 */
import { ignoringCreateRace, type Sql } from "./db.ts";
import type { Logger } from "./log.ts";

/** Where a consumer stands in the stream made at `stream` (its `created`). */
export interface KeptPosition {
  stream: string;
  /** The highest sequence settled. */
  highest: number;
  /** The first sequence that may not be settled: a replay starts here. */
  resumeAt: number;
}

/** Where consumers keep their positions: read at start, noted after each batch. */
export interface PositionStore {
  read(consumer: string): Promise<KeptPosition | undefined>;
  /** Notes a newer position; written soon, in the background (the latest one only). */
  note(consumer: string, position: KeptPosition): void;
  /** Writes what was noted and not yet written (at stop). */
  flush(): Promise<void>;
}

/** The positions of the consumers of a service, in table `fact_positions` of its schema. */
export function keptPositions(sql: Sql, log: Logger): PositionStore {
  return new TablePositions(sql, log);
}

class TablePositions implements PositionStore {
  readonly #sql: Sql;
  readonly #log: Logger;
  readonly #pending = new Map<string, KeptPosition>();
  #writing: Promise<void> | undefined;
  #installed: Promise<void> | undefined;

  constructor(sql: Sql, log: Logger) {
    this.#sql = sql;
    this.#log = log;
  }

  async read(consumer: string): Promise<KeptPosition | undefined> {
    await this.#install();
    const [row] = await this.#sql<{ stream: string; highest: string; resumeAt: string }[]>`
      select stream_created as stream, highest, resume_at as "resumeAt"
      from fact_positions where consumer = ${consumer}`;
    if (!row) return undefined;
    return { stream: row.stream, highest: Number(row.highest), resumeAt: Number(row.resumeAt) };
  }

  note(consumer: string, position: KeptPosition): void {
    this.#pending.set(consumer, position);
    this.#writing ??= this.#writeAll().finally(() => this.#writing = undefined);
  }

  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /** Writes the noted positions until none is left; a failure waits for the next batch's. */
  async #writeAll(): Promise<void> {
    while (this.#pending.size) {
      const [consumer, position] = this.#pending.entries().next().value!;
      this.#pending.delete(consumer);
      await this.#write(consumer, position).catch((error) => {
        // The database away: the batches fail as well, and the next one settled writes again.
        this.#log.debug("cannot keep the fact consumer's position", { consumer, error });
      });
    }
  }

  /**
   * Moves the row forward (a stream made anew starts it over): instances write in any order, and
   * every position any of them noted is a safe place to replay from.
   */
  async #write(consumer: string, position: KeptPosition): Promise<void> {
    await this.#install();
    await this.#sql`
      insert into fact_positions (consumer, stream_created, highest, resume_at)
      values (${consumer}, ${position.stream}, ${position.highest}, ${position.resumeAt})
      on conflict (consumer) do update set
        stream_created = excluded.stream_created,
        highest = case when fact_positions.stream_created = excluded.stream_created
          then greatest(fact_positions.highest, excluded.highest) else excluded.highest end,
        resume_at = case when fact_positions.stream_created = excluded.stream_created
          then greatest(fact_positions.resume_at, excluded.resume_at) else excluded.resume_at end,
        kept_at = now()`;
  }

  /** Makes the table once per process (instances starting at once may race on it). */
  #install(): Promise<void> {
    this.#installed ??= this.#sql`create table if not exists fact_positions (
        consumer text primary key,
        stream_created text not null,
        highest bigint not null,
        resume_at bigint not null,
        kept_at timestamptz not null default now())`
      .then(() => {}, ignoringCreateRace)
      .catch((error) => {
        this.#installed = undefined;
        throw error;
      });
    return this.#installed;
  }
}
