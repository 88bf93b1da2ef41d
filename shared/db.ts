/**
 * Postgres access for services: one postgres.js pool per service, pinned to the service's own
 * schema, forward-only SQL migrations, and the single translation of database errors. What a pool
 * tells its operator of its Postgres (lost, back, full, read-only) is shared/db_watch.ts.
 *
 * @example
 * ```ts
 * import { migrate, openDatabase } from "@shared/db.ts";
 * const sql = await openDatabase("postgres://postgres@127.0.0.1:5432/open_event", {
 *   schema: "catalog",
 * });
 * await migrate(sql, { schema: "catalog", dir: new URL("./migrations/", import.meta.url) });
 * await sql.end();
 * ```
 */
import postgres from "postgres";
import {
  ApiError,
  BadRequestError,
  ConflictError,
  GatewayTimeoutError,
  ServiceUnavailableError,
  UnprocessableError,
} from "./errors.ts";
import {
  COMMIT_MARGIN_MS,
  currentDeadline,
  currentScope,
  deadlineError,
  requireTimeLeft,
} from "./deadline.ts";
import {
  errorCodes,
  isDatabaseOutage,
  noteDatabaseError,
  READ_ONLY,
  TOO_MANY_CONNECTIONS,
  watchDatabase,
} from "./db_watch.ts";
import { createLogger, type Logger } from "./log.ts";
import { parseTimestamptz } from "./pg_time.ts";
import { databaseOf, hostCount, hostsOf, parameterOf, withDatabase } from "./postgres_url.ts";
import { inSpan, SpanKind, tracing } from "./telemetry.ts";

export type Sql = postgres.Sql;

const identifier = /^[a-z_][a-z0-9_]*$/;

/**
 * Services start together: when two create the same database or schema at once, the loser
 * gets "already exists" (42P04/42P06) or a unique violation on the catalog (23505).
 */
function ignoreIfCreatedMeanwhile(error: { code?: string }): void {
  if (!["42P04", "42P06", "23505"].includes(error?.code ?? "")) throw error;
}

/**
 * How long the first contact at start-up may take to connect (seconds): longer than a pool's 1 s,
 * for a database far away, but a start-up pointed at a server that never answers says so in this
 * long rather than postgres.js's 30 s.
 */
const FIRST_CONNECT_TIMEOUT_S = 10;

/**
 * Refuses a URL of another scheme as malformed (the start-up line then says to correct the
 * setting): postgres.js ignores the scheme, and `mysql://host:3306/db` was tried as Postgres there
 * (an operator review). Only the scheme is quoted, never the login.
 */
function checkPostgresUrl(url: string): void {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  // Its hosts read as hosts (a port that is no number is an "Invalid URL" TypeError).
  if (scheme === "postgres" || scheme === "postgresql") return void hostsOf(url);
  throw new TypeError(
    `Invalid URL: ${scheme ? `"${scheme}:"` : "no scheme"} where postgres:// or postgresql:// ` +
      "belongs",
  );
}

/**
 * Which server of a URL's hosts a connection settles on (postgres.js's `target_session_attrs`):
 * the URL's own choice, else the primary when it lists several (the way to follow a failover
 * without a virtual IP: the pool connects to whichever host takes writes). One host is used as it
 * is.
 */
function targetSessionAttrs(url: string): postgres.Options<never>["target_session_attrs"] {
  if (parameterOf(url, "target_session_attrs") !== undefined) return undefined;
  return hostCount(url) > 1 ? "primary" : undefined;
}

/** Creates the database named in `url` if it does not exist yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseOf(url);
  const sql = postgres(withDatabase(url, "postgres"), {
    max: 1,
    connect_timeout: FIRST_CONNECT_TIMEOUT_S,
    onnotice: () => {},
    target_session_attrs: targetSessionAttrs(url),
  });
  try {
    const [found] = await sql`select 1 from pg_database where datname = ${name}`;
    if (!found) {
      await sql`create database ${sql(name)}`.catch(ignoreIfCreatedMeanwhile);
    }
  } finally {
    await sql.end();
  }
}

export interface OpenOptions {
  /** The schema this service owns; it is created if missing and is the search path. */
  schema: string;
  /** Pool size. */
  max?: number;
  /**
   * Longest a statement outside a request's transaction may run (reads, the outbox relay,
   * consumers); transactions of a request are bounded by its deadline too (see `bounded`).
   * Default 5000.
   */
  statementTimeoutMs?: number;
  /** Where losing and regaining Postgres is logged (default: a logger named after the schema). */
  log?: Logger;
}

/**
 * How long a new connection waits before its next attempt after failures, in seconds.
 * postgres.js grows this to 20 s (3^failures / 100) and a query waiting for a connection waits
 * it out, then runs: after an outage, writes whose clients had long been told 504 were applied
 * seconds later. A short, capped pause fails fast while Postgres is down and serves again at
 * once when it is back.
 */
function reconnectPause(failures: number): number {
  return Math.min(0.05 * failures, 0.25);
}

/**
 * `timestamptz` values read exactly (shared/pg_time.ts); written as postgres.js writes dates.
 * Every time column of ours is a `timestamptz`.
 */
const timestamptz = {
  to: 1184,
  from: [1184],
  serialize: (x: unknown) => (x instanceof Date ? x : new Date(x as string)).toISOString(),
  parse: parseTimestamptz,
};

/** The URL each pool was opened with: what a client apart from the pool connects to. */
const urls = new WeakMap<Sql, string>();

/**
 * A client of one connection to `sql`'s database, apart from its pool (which may be busy with
 * slow requests while the database is fine), or undefined for a pool not opened here. Its caller
 * ends it; an idle connection closes itself after a second.
 */
export function separateClient(sql: Sql): Sql | undefined {
  const url = urls.get(sql);
  if (url === undefined) return undefined;
  // No array types to read first (`fetch_types`): its callers ask `select 1`, and a connection
  // opened to answer quickly should not spend a round trip on what they never use.
  return postgres(url, {
    max: 1,
    connect_timeout: 1,
    idle_timeout: 1,
    fetch_types: false,
    onnotice: () => {},
    target_session_attrs: targetSessionAttrs(url),
  });
}

/** How each pool opened here makes its companions: clients of their own beside it. */
const companionMakers = new WeakMap<Sql, (role: string, settings: CompanionSettings) => Sql>();

/** What a companion changes from its pool's settings. */
export interface CompanionSettings {
  /** Seconds an unused connection stays open. */
  idleTimeout: number;
  /** Milliseconds; default: the pool's. 0: none (and no answer timeout, see poolSettings). */
  statementTimeoutMs?: number;
}

/**
 * A client of one connection beside `sql`'s pool: the same database, schema and settings, named
 * `<pool's name> <role>` in pg_stat_activity (so the pool's connections counted there are the
 * pool's only). Undefined for a pool not opened here. Its caller ends it.
 */
export function companionClient(
  sql: Sql,
  role: string,
  settings: CompanionSettings,
): Sql | undefined {
  return companionMakers.get(sql)?.(role, settings);
}

/** Each pool's connection for metrics: opened at the first read, ended with the pool. */
const metricsClients = new WeakMap<Sql, { client?: Sql; ended: boolean; open(): Sql }>();

/**
 * The connection on which collectors read `sql`'s figures from Postgres (its connections, its
 * outbox): one of its own, opened at the first read and ended with the pool. Through the pool, a
 * read queued behind the requests it was to count: with every connection stuck behind a table
 * lock, the pool showed 0 active (found by an operator review, 2026-12-03). Its statements stop
 * after 500 ms, within a collector's time (metrics.ts). Undefined for a pool not opened here, or
 * ended.
 *
 * @example
 * ```ts ignore
 * const client = metricsClient(sql) ?? sql;
 * const [row] = await client`select count(*)::int as n from outbox`;
 * ```
 */
export function metricsClient(sql: Sql): Sql | undefined {
  const entry = metricsClients.get(sql);
  if (!entry || entry.ended) return undefined;
  return entry.client ??= entry.open();
}

/** Makes `sql`'s metrics connection (opened at first use) and ends it whenever the pool ends. */
function attachMetricsClient(sql: Sql): void {
  const entry = {
    client: undefined as Sql | undefined,
    ended: false,
    // Let go of it when nobody scrapes for a while.
    open: () => companionClient(sql, "metrics", { idleTimeout: 60, statementTimeoutMs: 500 })!,
  };
  metricsClients.set(sql, entry);
  const endPool = sql.end;
  sql.end = async (options) => {
    entry.ended = true;
    await Promise.all([entry.client?.end(options), endPool(options)]);
  };
}

/**
 * Seconds past its statement timeout that a connection may owe an answer without receiving a
 * byte before it is taken for lost and destroyed (`answer_timeout`, vendor/postgres/README.md).
 * Postgres itself ends a statement at its timeout and says so, so silence beyond that means a
 * host lost without a word (no FIN, no RST): its connections waited until the kernel gave up on
 * them, over ten minutes, and once every connection of the pool was stuck, the service answered
 * nothing though a new connection would have worked at once.
 */
export const ANSWER_MARGIN_S = 2;

/** Prepared statements each connection keeps (see poolSettings). */
export const MAX_PREPARED_STATEMENTS = 256;

/**
 * The settings of a pool pinned to `schema`, named `name` in pg_stat_activity. A statement
 * timeout of 0 (none) also turns the answer timeout off: a statement may then run for long
 * without a word.
 */
function poolSettings(
  schema: string,
  name: string,
  statementTimeoutMs: number,
): postgres.Options<Record<string, postgres.PostgresType>> {
  return {
    onnotice: () => {},
    // Seconds. A Postgres that is down refuses at once; one that does not answer at all (a
    // lost host) must not hold requests for postgres.js's default 30 s.
    connect_timeout: 1,
    answer_timeout: statementTimeoutMs > 0
      ? statementTimeoutMs / 1000 + ANSWER_MARGIN_S
      : undefined,
    backoff: reconnectPause,
    // Each statement text a connection prepares stays in it, in Postgres's memory too (~90 kB
    // for a list with 20 filter conditions), and clients choose their filters' shapes: without a
    // cap, one anonymous client sending varied filters grew the catalog's backends by ~92 kB a
    // request until the connection's lifetime ended (a review, 2026-12-05: 1.9 GB after 20,000).
    // The least recently used is closed beyond this (pgjdbc keeps 256 too); a Dredd run of every
    // route used at most ~100 per connection.
    max_prepared: MAX_PREPARED_STATEMENTS,
    connection: {
      search_path: `${schema},public`,
      application_name: name,
      statement_timeout: statementTimeoutMs,
    },
    transform: { undefined: null },
    types: { timestamptz },
  };
}

/** Opens a pool whose connections see only `schema` (plus `public` for extensions). */
export async function openDatabase(url: string, options: OpenOptions): Promise<Sql> {
  checkPostgresUrl(url);
  if (!identifier.test(options.schema)) {
    throw new Error(`Cannot open database: "${options.schema}" is not a valid schema name`);
  }
  await ensureDatabase(url);
  // One name per pool, so its connections can be counted (db_metrics.ts); the schema first.
  const name = `${options.schema} ${crypto.randomUUID().slice(0, 8)}`;
  const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
  const sql: Sql = postgres(url, {
    ...poolSettings(options.schema, name, statementTimeoutMs),
    target_session_attrs: targetSessionAttrs(url),
    max: options.max ?? 10,
    // Postgres full while the pool has connections: the query waits for them (the vendored
    // driver's `refused_pause`), and the operator hears of it as of a refusal.
    onrefused: (error) => noteDatabaseError(sql, error),
  });
  watchDatabase(sql, options.log ?? createLogger(options.schema));
  urls.set(sql, url);
  companionMakers.set(sql, (role, settings) =>
    postgres(url, {
      ...poolSettings(
        options.schema,
        `${name} ${role}`,
        settings.statementTimeoutMs ?? statementTimeoutMs,
      ),
      target_session_attrs: targetSessionAttrs(url),
      max: 1,
      idle_timeout: settings.idleTimeout,
    }));
  attachMetricsClient(sql);
  await sql`create schema if not exists ${sql(options.schema)}`.catch(ignoreIfCreatedMeanwhile);
  return sql;
}

/**
 * A row as a store hands it on while it has no typed row of its own (payments has typed rows;
 * the other services still use this one loose shape).
 */
export type Row = Record<string, unknown>;
/** An open transaction: queries like the pool, plus savepoints. */
export type Tx = postgres.TransactionSql;
/** Whatever a query can run on: the pool or an open transaction. */
export type Queryable = Sql | Tx;

/**
 * Inside a transaction: bounds every statement by the time left before the request's deadline,
 * and never past the pool's statement timeout (one `set_config` round trip, also ending a
 * transaction left idle), and refuses to commit with less than COMMIT_MARGIN_MS left, or once
 * Postgres gets the COMMIT after the deadline (see `awaitCommitUntilDeadline`), so nothing is
 * applied after a request's 504 (a change may still be applied just before it, by a service that
 * then dies or stalls before its answer leaves). Without a deadline (start-up, consumers) the pool's
 * statement timeout applies.
 *
 * Never past the pool's: its answer clock (ANSWER_MARGIN_S) takes a connection silent that long
 * past it for a lost host. With REQUEST_TIMEOUT_MS above the pool's statement timeout, a
 * statement waiting on a lock within its deadline had its healthy connection destroyed (503).
 */
export async function bounded<T>(
  sql: Sql,
  tx: Tx,
  work: (tx: Tx) => Promise<T>,
): Promise<T> {
  if (currentDeadline() === undefined) return await work(tx);
  const armedAt = Date.now();
  const left = Math.floor(requireTimeLeft("start the transaction", COMMIT_MARGIN_MS));
  const limit = statementLimit(sql, left);
  await tx`select set_config('statement_timeout', ${String(limit)}, true),
    set_config('idle_in_transaction_session_timeout', ${String(left)}, true)`;
  const value = await work(tx);
  await awaitCommitUntilDeadline(tx, armedAt);
  return value;
}

/** How far past the deadline Postgres may still take a COMMIT (see `awaitCommitUntilDeadline`). */
const COMMIT_WAIT_SLACK_MS = COMMIT_MARGIN_MS / 2;

/**
 * Refuses to send the COMMIT with less than COMMIT_MARGIN_MS left, and has Postgres take it no
 * later than COMMIT_WAIT_SLACK_MS past the deadline: one held on its way (a stalled link, a paused
 * process or VM) then finds its session ended and its change rolled back, instead of applied after
 * the client's 504. The limit set when the transaction was armed (at `armedAt`) counts from each
 * statement's end, so Postgres waited for the COMMIT up to how long the transaction had lasted
 * past the deadline (held 800 ms after a statement that ran to 500 ms before the deadline: applied
 * 300 ms past it). Set again only when that is more than the slack (most transactions last a few
 * ms, and keep their round trips); counted from this statement's end, at most its round trip after
 * it was sent, so taken at most that round trip less the slack past the deadline.
 */
async function awaitCommitUntilDeadline(tx: Tx, armedAt: number): Promise<void> {
  const left = requireTimeLeft("commit the transaction", COMMIT_MARGIN_MS);
  if (Date.now() - armedAt <= COMMIT_WAIT_SLACK_MS) return;
  const wait = String(Math.floor(left - COMMIT_WAIT_SLACK_MS));
  await tx`select set_config('idle_in_transaction_session_timeout', ${wait}, true)`;
  requireTimeLeft("commit the transaction", COMMIT_MARGIN_MS);
}

/** The statement timeout `sql`'s connections were opened with, in ms (0: none). */
function statementTimeoutOf(sql: Sql): number {
  const connection = sql.options.connection as { statement_timeout?: number | string };
  return Number(connection.statement_timeout ?? 0) || 0;
}

/** A request's statement timeout: the `leftMs` it has, never past the pool's (see `bounded`). */
function statementLimit(sql: Sql, leftMs: number): number {
  const pool = statementTimeoutOf(sql);
  return pool > 0 ? Math.min(leftMs, pool) : leftMs;
}

/** What runs once a change's transaction has ended (see `transaction`). */
export interface TransactionHooks {
  /** Runs once the change is committed. */
  afterCommit?: () => void;
  /**
   * Runs once the change is known not to have committed, or its COMMIT's outcome is unknown (the
   * connection was lost): its work failed, the commit was refused (deadline) or failed, or the
   * held transaction it joined rolled back later. For undoing what the work did outside the
   * database; it must check what is stored before undoing anything.
   */
  afterRollback?: () => void;
}

const hookLog = createLogger("db");

/**
 * Runs one kind of hook of each of `hooks`. A hook that throws is logged, and keeps neither the
 * others nor the caller's own answer from happening: a throwing afterRollback must not replace
 * the error that rolled back, nor leave a held request waiting forever.
 */
export function runHooks(hooks: readonly TransactionHooks[], which: keyof TransactionHooks): void {
  for (const hook of hooks) {
    try {
      hook[which]?.();
    } catch (error) {
      hookLog.error(`a transaction's ${which} hook failed`, { error });
    }
  }
}

/**
 * The one way a request's change opens a transaction: bounded by the request's deadline (see
 * `bounded`), and, when the request carries an Idempotency-Key, joined to the transaction that
 * records its answer (shared/idempotency.ts), which commits only after the handler has returned:
 * a change's caller learns that it did not commit from `hooks.afterRollback`, not from a throw.
 *
 * @example
 * ```ts ignore
 * let called: string | undefined;
 * await transaction(sql, async (tx) => {
 *   called = await callOutside(); // e.g. Stripe
 *   await tx`insert into links (account) values (${called})`;
 * }, { afterRollback: () => called && undoOutside(called) });
 * ```
 */
export async function transaction<T>(
  sql: Sql,
  work: (tx: Tx) => Promise<T>,
  hooks: TransactionHooks = {},
): Promise<T> {
  if (!tracing) return await runTransaction(sql, work, hooks);
  // INTERNAL: the span covers what the transaction's work does between its statements (a bus
  // request, a Stripe call), which a CLIENT span with a database system would charge to Postgres
  // in service graphs (an observability review, 2026-12-05).
  return await inSpan("transaction", {
    kind: SpanKind.INTERNAL,
    attributes: { "db.system.name": "postgresql", "db.namespace": schemaOf(sql) },
  }, () => runTransaction(sql, work, hooks));
}

/** The schema a pool is pinned to (the first of its search path). */
function schemaOf(sql: Sql): string {
  const connection = sql.options.connection as { search_path?: string };
  return connection.search_path?.split(",")[0] ?? "";
}

async function runTransaction<T>(
  sql: Sql,
  work: (tx: Tx) => Promise<T>,
  hooks: TransactionHooks,
): Promise<T> {
  const held = currentScope()?.held as HeldTransaction | undefined;
  if (held) return await held.join(sql, work, hooks);
  const tracked = settling(work);
  let result: T;
  try {
    result = await sql.begin((tx) => bounded(sql, tx, tracked.work)) as T;
  } catch (error) {
    noteDatabaseError(sql, error);
    tracked.whenSettled(() => runHooks([hooks], "afterRollback"));
    throw error;
  }
  runHooks([hooks], "afterCommit");
  return result;
}

/**
 * `work` as a transaction runs it, and a way to act once it has settled. postgres.js rejects a
 * transaction as soon as its connection closes (Postgres killed or restarted), while its work may
 * still be running: a link's Stripe exchange answered after that, and its afterRollback hook,
 * already run, found nothing exchanged to undo (the account stayed connected with no row). The
 * rollback hooks of a change run once its work has settled, so they see all it did.
 *
 * @example
 * ```ts ignore
 * const tracked = settling(work);
 * await sql.begin(tracked.work).catch(() => tracked.whenSettled(undo));
 * ```
 */
export function settling<T>(work: (tx: Tx) => Promise<T>): {
  work: (tx: Tx) => Promise<T>;
  /** Runs `then` once `work` has settled: at once when it has (or never started). */
  whenSettled(then: () => void): void;
} {
  let running: Promise<unknown> | undefined;
  return {
    work(tx) {
      const promise = work(tx);
      const settled = () => {
        if (running === promise) running = undefined;
      };
      running = promise;
      promise.then(settled, settled);
      return promise;
    },
    whenSettled(then) {
      if (running === undefined) then();
      else running.then(then, then);
    },
  };
}

/**
 * Runs `read` where this request's own writes are visible: in the transaction a keyed write holds
 * open until its answer is recorded (shared/idempotency.ts), else on the pool, where they are
 * committed already. What a write's answer reads after the change (the resources it includes)
 * goes through here, by way of `readAfterChange`, which also bounds it by the deadline: on the
 * pool, a keyed write's answer missed its own uncommitted rows, and its replays repeated that.
 */
export async function readOwnWrites<T>(sql: Sql, read: (sql: Queryable) => Promise<T>): Promise<T> {
  const held = currentScope()?.held as HeldTransaction | undefined;
  return held ? await held.join(sql, read, {}) : await read(sql);
}

/**
 * `readOwnWrites`, for what a change's answer reads once it is made, so that the answer can still
 * leave before the request's deadline. A keyed write's read joins its transaction, which the
 * deadline bounds already (too late: rolled back, 504, nothing changed). Any other change has
 * committed: its read must be done COMMIT_MARGIN_MS before the deadline (the answer's way back to
 * the gateway), else it fails with a 504 error and the caller answers the change as done without
 * it (services/catalog/handlers/includes.ts `renderWritten`). With less than twice that margin
 * left it does not start. Its statements run in a transaction of their own whose
 * `statement_timeout` is what is left once it has a connection (one that waited behind a busy
 * pool gets less, and none once its answer has gone without it), so a statement held by a lock
 * gives its connection back about when the answer leaves; a nested include's later statements
 * get the same limit again. Until 2026-12-05 such a read, held by a lock, took a committed write's
 * answer past the gateway's 504.
 *
 * @example
 * ```ts ignore
 * const row = await transaction(sql, (tx) => insertThing(tx, values));
 * try {
 *   included = await readAfterChange(sql, (q) => q`select * from parts where thing_id = ${row.id}`);
 * } catch {
 *   // answer the change as done, without what it would have included
 * }
 * ```
 */
export async function readAfterChange<T>(
  sql: Sql,
  read: (sql: Queryable) => Promise<T>,
): Promise<T> {
  const deadline = currentDeadline();
  if (currentScope()?.held || deadline === undefined) return await readOwnWrites(sql, read);
  const what = "read what the answer adds to the change";
  requireTimeLeft(what, 2 * COMMIT_MARGIN_MS);
  const answerBy = deadline - COMMIT_MARGIN_MS;
  let gaveUp = false;
  const reading = sql.begin(async (tx) => {
    const left = Math.floor(answerBy - Date.now());
    if (gaveUp || left <= 0) throw deadlineError(what);
    await tx`select set_config('statement_timeout', ${String(statementLimit(sql, left))}, true)`;
    return await read(tx);
  }) as Promise<T>;
  reading.catch(() => {}); // lost the race below: its statements end by themselves
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      gaveUp = true;
      reject(deadlineError(what));
    }, answerBy - Date.now());
  });
  try {
    return await Promise.race([reading, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Takes the transaction-scoped advisory lock named `key` (its `hashtext`): exclusive, or shared
 * with other shared holders. It ends with the transaction. The one way services name such locks
 * (migrations, the last super admin, Stripe accounts, catalog names a discount code holds).
 *
 * @example
 * ```ts ignore
 * await advisoryXactLock(tx, "catalog:super-admins");
 * ```
 */
export async function advisoryXactLock(
  tx: Queryable,
  key: string,
  options: { shared?: boolean } = {},
): Promise<void> {
  if (options.shared) await tx`select pg_advisory_xact_lock_shared(hashtext(${key}))`;
  else await tx`select pg_advisory_xact_lock(hashtext(${key}))`;
}

/** A transaction kept open until the request's answer is known (shared/idempotency.ts). */
export interface HeldTransaction {
  /** Runs `work` in the held transaction; `hooks` run when that one ends (or its savepoint). */
  join<T>(sql: Sql, work: (tx: Tx) => Promise<T>, hooks: TransactionHooks): Promise<T>;
  /** Runs `then` once the held transaction commits (at once if none is open; never on rollback). */
  afterCommit(then: () => void): void;
}

/**
 * Runs `then` once the changes this request made so far are committed: at once, unless a keyed
 * request holds them open until its answer is recorded (shared/idempotency.ts), then when that
 * commits (never if it rolls back). For work started after a change that must find it committed:
 * a background task run at once read the pool before the held COMMIT and found nothing to do.
 *
 * @example
 * ```ts ignore
 * await changeWithFact(sql, relay, (tx) => queueRelease(tx, account), describe);
 * afterCommitted(() => background.run(() => releaseQueued(ctx)));
 * ```
 */
export function afterCommitted(then: () => void): void {
  const held = currentScope()?.held as HeldTransaction | undefined;
  if (held) held.afterCommit(then);
  else then();
}

export interface MigrateOptions {
  schema: string;
  /** Folder of `NNNN_name.sql` files, applied in name order, each once, each in a transaction. */
  dir: URL;
  /**
   * Tables every service has beside its migrations (the outbox, the idempotency keys), made in the
   * same locked transaction: instances starting at once on a fresh database would otherwise race
   * on `create table if not exists` (Postgres then reports the table's type as a duplicate).
   */
  alsoInstall?: (tx: Tx) => Promise<void>;
}

/**
 * For the `.catch` of an idempotent `create table if not exists` (or `add column if not
 * exists`) that instances starting together may race on: the loser's "already exists" (42P07 the
 * table, 42710 its row type, 42701 a column) or catalog unique violation (23505) is no error;
 * anything else is thrown again. (42710 was missed until 2026-12-07: an instance failed its start.)
 */
export function ignoringCreateRace(error: { code?: string }): void {
  if (!["42P07", "42710", "42701", "23505"].includes(error?.code ?? "")) throw error;
}

/** Applies pending migrations; safe when several instances start at once (advisory lock). */
export async function migrate(sql: Sql, options: MigrateOptions): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(options.dir)) {
    if (entry.isFile && /^\d{4}_[a-z0-9_]+\.sql$/.test(entry.name)) files.push(entry.name);
  }
  files.sort();
  const applied: string[] = [];
  // Migrations may take longer than a request (the pool's statement timeout), without a word to
  // the client meanwhile: on a connection of their own, where silence is not taken for a lost
  // host (ANSWER_MARGIN_S).
  const own = companionClient(sql, "migrate", { idleTimeout: 1, statementTimeoutMs: 0 });
  try {
    await migrateOn(own ?? sql, options, files, applied);
  } finally {
    await own?.end();
  }
  return applied;
}

/** `migrate`'s transaction on `client`: applies what `files` holds and is not yet applied. */
async function migrateOn(
  client: Sql,
  options: MigrateOptions,
  files: string[],
  applied: string[],
): Promise<void> {
  await client.begin(async (tx) => {
    await tx`set local statement_timeout = 0`;
    await advisoryXactLock(tx, `migrate:${options.schema}`);
    await tx`create table if not exists ${tx(options.schema)}.schema_migrations (
      name text primary key, applied_at timestamptz not null default now())`;
    const done = new Set(
      (await tx`select name from ${tx(options.schema)}.schema_migrations`).map((r) => r.name),
    );
    for (const name of files) {
      if (done.has(name)) continue;
      const text = await Deno.readTextFile(new URL(name, options.dir));
      await tx.unsafe(`set local search_path to ${options.schema}, public`);
      await tx.unsafe(text);
      await tx`insert into ${tx(options.schema)}.schema_migrations (name) values (${name})`;
      applied.push(name);
    }
    await options.alsoInstall?.(tx);
  });
}

/**
 * A transaction Postgres rolled back whole for want of time or because of a concurrent one: a
 * retry may pass. Undefined for any other error.
 */
function rolledBackError(code: string | undefined, error: unknown): ApiError | undefined {
  switch (code) {
    // Postgres chose this transaction to end a deadlock, or could not serialize it beside a
    // concurrent one (the other has gone on). Answered as the busy database they are, not as a
    // 500 (a review: a sub-topic's PATCH that met its topic's deletion).
    case "40P01":
    case "40001":
      return new ServiceUnavailableError(
        "Cannot complete the change now: it crossed a concurrent one, and nothing was changed; " +
          "try again",
        { cause: error },
      );
    // A statement cut off by the request's deadline (statement or lock timeout).
    case "57014":
    case "55P03":
    case "25P03":
      return new GatewayTimeoutError("Cannot finish in time: nothing was changed", {
        cause: error,
      });
    default:
      return undefined;
  }
}

/** A write refused by a read-only session (`cause` carries code 25006). */
function readOnlyError(cause: unknown): ServiceUnavailableError {
  return new ServiceUnavailableError(
    "Cannot save now: the database takes no writes (read-only: a standby after a failover, or " +
      "maintenance); try again shortly",
    { cause },
  );
}

/**
 * Throws the read-only 503 unless `sql`'s session takes writes: for a change that acts outside
 * the database before its first write (payments exchanges a Stripe code, which connects an
 * account), where finding out at that write is too late. Noted by the pool's watch as a refused
 * write is.
 */
export async function requireWritable(pool: Sql, sql: Queryable = pool): Promise<void> {
  const [{ readOnly }] = await sql<{ readOnly: string }[]>`
    select current_setting('transaction_read_only') as "readOnly"`;
  if (readOnly !== "on") return;
  const refused = Object.assign(new Error("the session is read-only"), { code: READ_ONLY });
  noteDatabaseError(pool, refused);
  throw readOnlyError(refused);
}

/** A database that cannot serve now but will: full, gone, or out of disk space or memory. */
function unavailableError(code: string | undefined, error: unknown) {
  // Full, not gone: it answered, and says to come back (still an outage for every retry).
  if (errorCodes(error).includes(TOO_MANY_CONNECTIONS)) {
    return new ServiceUnavailableError(
      "Cannot use the database now: it is at capacity (too many connections); try again shortly",
      { cause: error },
    );
  }
  if (isDatabaseOutage(error)) {
    return new ServiceUnavailableError("Cannot reach the database: try again shortly", {
      cause: error,
    });
  }
  // Until 2026-12-06 a write to a read-only session was a 500, an error logged for each.
  if (errorCodes(error).includes(READ_ONLY)) return readOnlyError(error);
  // Class 53 but 53300 (above): out of disk space (53100), of memory (53200). The host's trouble,
  // not the request's, and it heals (consumers retry it: shared/transient.ts); a resource review
  // (2026-12-06) saw a Postgres whose disk filled answer every write 500.
  if (code?.startsWith("53")) {
    return new ServiceUnavailableError(
      "Cannot save now: the database is out of resources (disk space or memory); try again later",
      { cause: error },
    );
  }
  return undefined;
}

/**
 * The one place database errors become API errors: unique violations are conflicts (pointing at
 * `messages.pointer`, the member whose value is taken, when the caller names it), bad values are
 * 422/400, a deadlock or serialization failure and an outage 503, a timeout 504, everything else
 * stays an unknown (500) error for the log.
 */
export function translateDbError(
  error: unknown,
  messages: { conflict?: string; pointer?: string } = {},
): unknown {
  if (error instanceof ApiError) return error;
  const code = (error as { code?: string })?.code;
  const rolledBack = rolledBackError(code, error);
  if (rolledBack) return rolledBack;
  switch (code) {
    case "23505":
      return new ConflictError(messages.conflict ?? "Cannot save: the object already exists", {
        pointer: messages.pointer,
        cause: error,
      });
    case "23503":
      return new UnprocessableError("Cannot save: a related object does not exist", {
        cause: error,
      });
    case "23514":
      return new UnprocessableError("Cannot save: a value breaks a rule of the data", {
        cause: error,
      });
    case "22003":
      return new UnprocessableError("Cannot save: a number is out of range", { cause: error });
    case "22P02":
    case "22007":
    case "22008":
    case "22009":
      return new BadRequestError("Cannot read a value: it has the wrong format", { cause: error });
    case "22021":
      return new BadRequestError("Cannot read a value: text cannot contain NUL characters", {
        cause: error,
      });
    case "22025":
      return new BadRequestError("Cannot read a pattern: it has an invalid escape", {
        cause: error,
      });
    default:
      return unavailableError(code, error) ?? error;
  }
}
