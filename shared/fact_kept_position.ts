/**
 * A durable fact consumer's position kept in the consuming service's own database, beside what
 * its facts made there, so that the database can say when it is behind the consumer: restored
 * from a backup, or on a standby promoted after a failover that lost its last commits. JetStream
 * keeps the durable's position past everything the database held then, and it would never hand
 * those facts over again (a deleted event's codes stayed live for good after a restore: the
 * backup-and-restore review of 2026-12-06). With the position kept here, the consumer replays what
 * the database lacks at its next start (shared/fact_catch_up.ts).
 *
 * Each row holds two sequences of the stream (told apart by its `created`): the highest fact
 * settled (handled, parked or skipped) and where a replay must start (`resumeAt`: every fact
 * before it was settled, so committed, when the row was written). A backup holds a row written
 * before it was taken, so everything before that row's `resumeAt` too. Rows only move forward:
 * several instances of a service share one durable consumer and write one row, each every second
 * at least. So a write that finds the row below this process's last write has met a database that
 * lost commits under it: it marks the loss (`lost_from`) and the consumer starts again to replay it
 * (shared/fact_start_again.ts, shared/fact_catch_up.ts). Three reviews on 2026-12-06 shaped this;
 * their cases are in the tests.
 *
 * @example
 * ```ts ignore
 * await consumeFacts(bus, { durable: "discounts-catalog", keptIn: keptPositions(sql, log), ... });
 * ```
 */
import { ignoringCreateRace, type Sql } from "./db.ts";
import { errorCodes, noteDatabaseError } from "./db_watch.ts";
import { LinePace, type Logger } from "./log.ts";

/**
 * How often a consumer that keeps its position reads its floor and writes where it stands, moved
 * or not: each write is also its look for a loss under it.
 */
export const KEPT_EVERY_MS = 1_000;

/** Where a consumer stands in the stream made at `stream` (its `created`). */
export interface KeptPosition {
  stream: string;
  /** The highest sequence settled. */
  highest: number;
  /** The first sequence that may not be settled: a replay starts here. */
  resumeAt: number;
  /** Read only: a loss marked (`lost_from`; `resumeAt` is then no later). */
  lost?: LossMark;
  /** Read only: when the row was last written (any instance writes it every second). */
  keptAt?: string;
}

/**
 * A loss marked: where it starts, and when it was marked last (a second loss merged into it marks
 * it anew, so the instances replaying the first act again, and their catch-up clears only the mark
 * they replayed).
 */
export interface LossMark {
  from: number;
  at: string;
  /**
   * Marked by a catch-up about to replay (`markBehind`), not by a loss found under a running
   * instance: running instances leave it to the catch-up (their positions are safe under it).
   */
  byCatchUp?: boolean;
}

/** Where consumers keep their positions: read at start, noted after each batch. */
export interface PositionStore {
  /** The kept position; its `resumeAt` the lower of the row's and of a loss marked. */
  read(consumer: string): Promise<KeptPosition | undefined>;
  /** Notes a newer position; written soon, in the background (the latest one only). */
  note(consumer: string, position: KeptPosition): void;
  /** Writes what was noted and not yet written (at stop). */
  flush(): Promise<void>;
  /**
   * Calls `lost` when a write finds the kept position below the one this process wrote before (the
   * database lost commits under a running instance: a failover to a standby that was behind, a
   * restore while it ran), or finds a loss marked that this process has not acted on (not a
   * catch-up's own mark, `markBehind`: that catch-up replays it). The loss is kept (`lost_from`)
   * until a replay from it is done (`caughtUp`).
   */
  onLost(consumer: string, lost: () => void): void;
  /** A replay from the loss `mark` is done: the mark goes (marked again since, it stays). */
  caughtUp(consumer: string, mark: LossMark): Promise<void>;
  /**
   * Marks the database behind from `from` (a catch-up about to replay), as a loss is marked: until
   * the replay is done every instance takes it for behind, however the row moves meanwhile.
   */
  markBehind(consumer: string, from: number): Promise<LossMark>;
  /**
   * Claims the catch-up of `consumer` for `claimant` for `forMs`, or renews its claim: false while
   * another claimant's stands. One instance replays at a time (shared/fact_catch_up.ts).
   */
  claimReplay(consumer: string, claimant: string, forMs: number): Promise<boolean>;
  /** Whether any claim on the catch-up of `consumer` stands. */
  replayClaimed(consumer: string): Promise<boolean>;
  /** Gives up `claimant`'s claim, if it still holds it. */
  releaseReplay(consumer: string, claimant: string): Promise<void>;
}

/**
 * How long the database refuses every write of a consumer's position before it is said, and how
 * often at most it is said again. Shorter refusals heal by themselves: `pg_restore --clean` under
 * a running instance drops the table (42P01) for a moment, and the instance then sees the loss and
 * replays it (a review saw a first warning, and its advice to restart, in every such restore). The
 * time it then leaves the table without its key (42P10) is never said (`#sayNotKept`).
 */
const SAY_REFUSED_AFTER_MS = 60_000;

/** Postgres's codes for a table, and a column, that does not exist. */
const UNDEFINED_TABLE = "42P01";
const UNDEFINED_COLUMN = "42703";
/** Postgres's code for an ON CONFLICT without a key to match (a table restored before its key). */
const NO_UNIQUE_KEY = "42P10";

function lossMark(
  row: { lostFrom: string | null; lostAt: string | null; byCatchUp?: boolean | null },
): LossMark | undefined {
  if (row.lostFrom === null || row.lostAt === null) return undefined;
  return { from: Number(row.lostFrom), at: row.lostAt, byCatchUp: row.byCatchUp === true };
}

/**
 * The positions of the consumers of a service, in table `fact_positions` of its schema.
 * `sayRefusedAfterMs`: how long the database must refuse every write before it is said (tests).
 */
export function keptPositions(
  sql: Sql,
  log: Logger,
  options: { sayRefusedAfterMs?: number } = {},
): PositionStore {
  return new TablePositions(sql, log, options.sayRefusedAfterMs ?? SAY_REFUSED_AFTER_MS);
}

class TablePositions implements PositionStore {
  readonly #sql: Sql;
  readonly #log: Logger;
  readonly #pending = new Map<string, KeptPosition>();
  /** What this process last wrote, per consumer: the row holds it, unless commits were lost. */
  readonly #written = new Map<string, KeptPosition>();
  readonly #lost = new Map<string, () => void>();
  /** The loss marked that this process acts on, per consumer (reported, or read to replay). */
  readonly #actedOn = new Map<string, string>();
  #writing: Promise<void> | undefined;
  readonly #sayRefusedAfterMs: number;
  readonly #refusedSaid: LinePace;
  /** Since when every write of a consumer's position was refused (none written since). */
  readonly #refusedSince = new Map<string, number>();
  #installed: Promise<void> | undefined;
  #columns: Promise<void> | undefined;

  constructor(sql: Sql, log: Logger, sayRefusedAfterMs: number) {
    this.#sql = sql;
    this.#log = log;
    this.#sayRefusedAfterMs = sayRefusedAfterMs;
    this.#refusedSaid = new LinePace(sayRefusedAfterMs);
  }

  async read(consumer: string): Promise<KeptPosition | undefined> {
    const [row] = await this.#positions(() =>
      this.#sql<
        {
          stream: string;
          highest: string;
          resumeAt: string;
          lostFrom: string | null;
          lostAt: string | null;
          byCatchUp: boolean;
          at: string;
        }[]
      >`
        select stream_created as stream, highest,
          least(resume_at, coalesce(lost_from, resume_at)) as "resumeAt",
          lost_from as "lostFrom", lost_at::text as "lostAt", lost_by_catch_up as "byCatchUp",
          kept_at::text as at
        from fact_positions where consumer = ${consumer}`
    );
    if (!row) return undefined;
    const kept = { stream: row.stream, highest: Number(row.highest), keptAt: row.at };
    const lost = lossMark(row);
    if (!lost) return { ...kept, resumeAt: Number(row.resumeAt) };
    // Read at a start, which replays it: its own writes meanwhile do not report it again.
    this.#actedOn.set(consumer, lost.at);
    return { ...kept, resumeAt: Number(row.resumeAt), lost };
  }

  /**
   * Written even when it did not move (a floor read every second): each write compares the row
   * with this process's last one, so a loss under an idle consumer is seen within a second (a
   * review: seen only at the next fact, which may be hours away), and `kept_at` tells a start
   * that instances run (shared/fact_catch_up.ts).
   */
  note(consumer: string, position: KeptPosition): void {
    this.#pending.set(consumer, position);
    this.#writeInTurn();
  }

  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /** Writes what is noted, one write at a time; a note made as the last write ends is not left. */
  #writeInTurn(): void {
    if (this.#writing || !this.#pending.size) return;
    this.#writing = this.#writeAll().finally(() => {
      this.#writing = undefined;
      this.#writeInTurn();
    });
  }

  /**
   * Writes the noted positions until none is left. A failed write is not taken for written: the
   * next note of the same position writes it again (each floor read notes one).
   */
  async #writeAll(): Promise<void> {
    while (this.#pending.size) {
      const [consumer, position] = this.#pending.entries().next().value!;
      this.#pending.delete(consumer);
      try {
        const lost = await this.#write(consumer, position, this.#written.get(consumer));
        this.#written.set(consumer, position);
        this.#refusedSince.delete(consumer);
        this.#actOnLoss(consumer, lost);
      } catch (error) {
        // The database away: the batches fail as well. Dropped, not retried at once (a loop
        // while it is away); the next note (a batch, a floor read) writes again.
        this.#sayNotKept(consumer, error);
        this.#pending.clear();
        return;
      }
    }
  }

  /**
   * Says that a position write failed. Not refused (the database away, busy): told to the pool's
   * watch, which says an outage once, and at debug here. Refused (its table gone, as in a database
   * made anew under a running instance, which never makes it again; a privilege revoked): at debug
   * while every write has been refused for less than `sayRefusedAfterMs`, then as a warning, again
   * each such interval. Until 2026-12-07 every failure was at debug only, and nobody learnt that a
   * later restore could not catch up. A missing key (42P10) is never said: `pg_restore` adds keys
   * after loading every table's rows, which takes long on a large database, and heals by itself.
   */
  #sayNotKept(consumer: string, error: unknown): void {
    const [code] = errorCodes(error);
    const refused = code !== undefined && code !== NO_UNIQUE_KEY &&
      (code.startsWith("42") || code.startsWith("3F"));
    if (!refused) {
      this.#refusedSince.delete(consumer);
      noteDatabaseError(this.#sql, error);
      return this.#log.debug("cannot keep the fact consumer's position", { consumer, code, error });
    }
    const since = this.#refusedSince.get(consumer) ?? performance.now();
    this.#refusedSince.set(consumer, since);
    const forMs = performance.now() - since;
    if (forMs < this.#sayRefusedAfterMs || !this.#refusedSaid.due(consumer)) {
      return this.#log.debug("cannot keep the fact consumer's position", { consumer, code, error });
    }
    this.#log.warn(
      "cannot keep the fact consumer's position: the database has refused every write of it " +
        "for a while: its table missing (a database made anew under this instance: restart it " +
        "once the database is in place) or its privileges revoked (grant them again); until " +
        "then a restore cannot catch up with its facts",
      { consumer, code, refusedForMs: Math.round(forMs), error },
    );
  }

  onLost(consumer: string, lost: () => void): void {
    this.#lost.set(consumer, lost);
  }

  async caughtUp(consumer: string, mark: LossMark): Promise<void> {
    await this.#positions(() =>
      this.#sql`update fact_positions set lost_from = null, lost_at = null,
          lost_by_catch_up = false
        where consumer = ${consumer} and lost_at::text = ${mark.at}`
    );
  }

  async markBehind(consumer: string, from: number): Promise<LossMark> {
    // A loss marked already is merged (its start may be lower), and stays one that running
    // instances act on.
    const [row] = await this.#positions(() =>
      this.#sql<{ lostFrom: string; lostAt: string; byCatchUp: boolean }[]>`
        update fact_positions set lost_from = least(coalesce(lost_from, ${from}), ${from}),
          lost_at = clock_timestamp(),
          lost_by_catch_up = case when lost_from is null then true else lost_by_catch_up end
        where consumer = ${consumer}
        returning lost_from as "lostFrom", lost_at::text as "lostAt",
          lost_by_catch_up as "byCatchUp"`
    );
    if (!row) throw new Error(`no kept position of ${consumer} to mark behind`);
    const mark = lossMark(row)!;
    // Its own mark: this process's next write finds it and must not start the consumer again.
    this.#actedOn.set(consumer, mark.at);
    return mark;
  }

  async claimReplay(consumer: string, claimant: string, forMs: number): Promise<boolean> {
    const rows = await this.#claims(() =>
      this.#sql`
      insert into fact_replays as claim (consumer, claimant, until)
      values (${consumer}, ${claimant}, clock_timestamp() + ${forMs} * interval '1 millisecond')
      on conflict (consumer) do update set claimant = excluded.claimant, until = excluded.until
      where claim.claimant = excluded.claimant or claim.until < clock_timestamp()
      returning 1`
    );
    return rows.length === 1;
  }

  async replayClaimed(consumer: string): Promise<boolean> {
    const rows = await this.#claims(() =>
      this.#sql`select 1 from fact_replays
        where consumer = ${consumer} and until >= clock_timestamp()`
    );
    return rows.length > 0;
  }

  /**
   * Runs statements on `fact_positions` once it is made, its columns added once per process and
   * again if one is missing (a database restored from a dump older than `lost_by_catch_up`: every
   * write failed, and no loss was seen: a review). Never made again while the process runs: made
   * by a write in the moment `pg_restore --clean` had dropped it, it held that write's position
   * and the restore's row was refused, and the loss went unseen (a review).
   */
  #positions<T>(statements: () => Promise<T>): Promise<T> {
    return this.#repairing(UNDEFINED_COLUMN, () => {
      this.#columns = undefined;
      return this.#addColumns();
    }, statements);
  }

  /**
   * Runs statements on `fact_replays`, made again and run again once if it is missing (a
   * database made anew from an older dump under a running process: a review found an instance
   * waiting for a claim in a table gone for good). Claims are short-lived: nothing restored there
   * matters.
   */
  #claims<T>(statements: () => Promise<T>): Promise<T> {
    return this.#repairing(UNDEFINED_TABLE, () => this.#makeClaims(), statements);
  }

  /** Runs `statements` once the tables are made; failing with `code`, `repair`s and runs again. */
  async #repairing<T>(
    code: string,
    repair: () => Promise<void>,
    statements: () => Promise<T>,
  ): Promise<T> {
    await this.#install();
    try {
      return await statements();
    } catch (error) {
      if (errorCodes(error)[0] !== code) throw error;
      await repair();
      return await statements();
    }
  }

  async releaseReplay(consumer: string, claimant: string): Promise<void> {
    await this.#claims(() =>
      this.#sql`delete from fact_replays
        where consumer = ${consumer} and claimant = ${claimant}`
    );
  }

  /**
   * Reports a loss marked that this process has not acted on: marked by this write, by a write of
   * this process whose answer was lost (a review: such a mark stood and no instance acted), or by
   * another instance (which may not live to replay it). Each instance that sees it replays it.
   */
  #actOnLoss(consumer: string, lost: LossMark | undefined): void {
    if (!lost) {
      this.#actedOn.delete(consumer);
      return;
    }
    if (this.#actedOn.get(consumer) === lost.at) return;
    this.#actedOn.set(consumer, lost.at);
    // A catch-up's: it replays, and this instance's position is safe under the mark meanwhile (a
    // review: every running instance logged a loss and stopped following until it was done).
    if (lost.byCatchUp) return;
    this.#log.error(
      "the database lost facts its fact consumer had settled (a failover to a standby that was " +
        "behind, or a restore while the service ran): handing them over again",
      { consumer, fromSequence: lost.from },
    );
    this.#lost.get(consumer)?.();
  }

  /**
   * Moves the row forward; returns where a loss marked starts, if one is. Instances write in any
   * order, and every position any of them noted is a safe place to replay from. The row holds
   * this process's `last` write: found below it (its `highest` or `resume_at`), the database lost
   * commits since, and the loss is marked in the same statement (`lost_from`, the row's own replay
   * start then), which later writes leave as it is, so that a start replays from it even if this
   * process does not live to. A stream made anew starts the row over; a write of an older stream
   * than the row's (an instance still settling a fact of the lost one) changes nothing.
   */
  async #write(
    consumer: string,
    position: KeptPosition,
    last: KeptPosition | undefined,
  ): Promise<LossMark | undefined> {
    const below = last
      ? this.#sql`kept.stream_created = ${last.stream}
          and (kept.highest < ${last.highest} or kept.resume_at < ${last.resumeAt})`
      : this.#sql`false`;
    const [row] = await this.#positions(() =>
      this.#sql<{ lostFrom: string | null; lostAt: string | null; byCatchUp: boolean }[]>`
      insert into fact_positions as kept (consumer, stream_created, highest, resume_at)
      values (${consumer}, ${position.stream}, ${position.highest}, ${position.resumeAt})
      on conflict (consumer) do update set
        stream_created = excluded.stream_created,
        highest = case when kept.stream_created = excluded.stream_created
          then greatest(kept.highest, excluded.highest) else excluded.highest end,
        resume_at = case when kept.stream_created = excluded.stream_created
          then greatest(kept.resume_at, excluded.resume_at) else excluded.resume_at end,
        lost_from = case
          when kept.stream_created <> excluded.stream_created then null
          when ${below} then least(coalesce(kept.lost_from, kept.resume_at), kept.resume_at)
          else kept.lost_from end,
        lost_at = case
          when kept.stream_created <> excluded.stream_created then null
          when ${below} then clock_timestamp()
          else kept.lost_at end,
        lost_by_catch_up = case
          when kept.stream_created <> excluded.stream_created or ${below} then false
          else kept.lost_by_catch_up end,
        kept_at = clock_timestamp()
      where kept.stream_created = excluded.stream_created
        or excluded.stream_created::timestamptz > kept.stream_created::timestamptz
      returning lost_from as "lostFrom", lost_at::text as "lostAt",
        lost_by_catch_up as "byCatchUp"`
    );
    return row ? lossMark(row) : undefined;
  }

  /** Makes the tables once per process (instances starting at once may race on them). */
  #install(): Promise<void> {
    this.#installed ??= (async () => {
      await this.#sql`create table if not exists fact_positions (
          consumer text primary key,
          stream_created text not null,
          highest bigint not null,
          resume_at bigint not null,
          -- Where a replay must start because the database lost commits under a running
          -- instance, and when that was marked last.
          lost_from bigint,
          lost_at timestamptz,
          kept_at timestamptz not null default now())`.catch(ignoringCreateRace);
      await this.#addColumns();
      await this.#makeClaims();
    })()
      .catch((error) => {
        this.#installed = undefined;
        throw error;
      });
    return this.#installed;
  }

  /**
   * Adds the columns of `fact_positions` added since it was first made, once per process. Looked
   * for first: an ALTER locks the table even when it adds nothing, and waited behind a `pg_dump`,
   * holding every instance's position writes behind it (a review: 5 s each start during a dump).
   */
  #addColumns(): Promise<void> {
    this.#columns ??= (async () => {
      const [found] = await this.#sql`select 1 from information_schema.columns
        where table_schema = current_schema() and table_name = 'fact_positions'
          and column_name = 'lost_by_catch_up'`;
      if (found) return;
      // Since 2026-12-06: whether the mark is a catch-up's (`markBehind`) rather than a loss's.
      await this.#sql`alter table fact_positions
          add column if not exists lost_by_catch_up boolean not null default false`
        .catch(ignoringCreateRace);
    })().catch((error) => {
      this.#columns = undefined;
      throw error;
    });
    return this.#columns;
  }

  /** Who replays for a consumer (a catch-up), until when unless renewed: one at a time. */
  async #makeClaims(): Promise<void> {
    await this.#sql`create table if not exists fact_replays (
        consumer text primary key,
        claimant text not null,
        until timestamptz not null)`.catch(ignoringCreateRace);
  }
}
