/**
 * What a service's pool says of its Postgres, to its operator: losing and regaining it (logged once
 * per transition, a probe every 250 ms meanwhile), and refusals it does not watch as outages (full:
 * retried as one all the same; read-only) logged at most once a minute with their count; and which
 * errors are an outage. Every pool `openDatabase` opens (shared/db.ts) is watched; a failed query
 * is reported with `noteDatabaseError`.
 *
 * @example
 * ```ts ignore
 * watchDatabase(sql, log);
 * try { await sql`select 1`; } catch (error) { noteDatabaseError(sql, error); throw error; }
 * ```
 */
import type postgres from "postgres";
import { LinePace, type Logger } from "./log.ts";

type Sql = postgres.Sql;

/** Postgres is full and refuses new connections: an outage for retries, worded as "busy". */
export const TOO_MANY_CONNECTIONS = "53300";
/**
 * A write refused because the session is read-only: a standby reached after a failover (a DNS
 * name or virtual IP that moved late), or a database set read-only for maintenance.
 */
export const READ_ONLY = "25006";

/** Error codes that mean "Postgres cannot be reached now", not "this query is wrong". */
const outageCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  // The host's name does not resolve (yet, or for now): a stopped container, DNS away.
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  // No answer past the statement timeout: a host lost without a word (see ANSWER_MARGIN_S).
  "ANSWER_TIMEOUT",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up or recovering
  TOO_MANY_CONNECTIONS,
]);

/** The codes of `error` and of its causes, outermost first. */
export function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let e = error, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}

/** True when `error` (or its cause) says the database is unreachable. */
export function isDatabaseOutage(error: unknown): boolean {
  return errorCodes(error).some((code) => outageCodes.has(code) || code.startsWith("08"));
}

/**
 * True when the pool's watch logs `error`'s cause once for every request it fails (an outage, a
 * full or read-only database: see `DatabaseWatch`), so serving need not log it per request.
 */
export function loggedByDatabaseWatch(error: unknown): boolean {
  return isDatabaseOutage(error) || errorCodes(error).includes(READ_ONLY);
}

const watches = new WeakMap<Sql, DatabaseWatch>();

/** Watches the pool `sql` (opened by shared/db.ts's `openDatabase`), logging to `log`. */
export function watchDatabase(sql: Sql, log: Logger): void {
  watches.set(sql, new DatabaseWatch(sql, log));
}

/** How often a database that stays full, or read-only, is logged again (see `Refusals`). */
const REFUSALS_LOG_EVERY_MS = 60_000;

/**
 * Logs losing and regaining Postgres once per transition: a failed query makes it check at once
 * (a pooled connection found closed after a restart is no outage if a new one works), then a probe
 * every 250 ms finds when it is back.
 */
class DatabaseWatch {
  #checking = false;
  /**
   * Postgres refused a new connection for being full (53300): reachable, and the pool's open
   * connections still serve, so no outage to watch. Watched as one, each refusal made the watch's
   * own `select 1` need a new connection too: "lost the connection" and "reachable again" were
   * logged once or twice a second for as long as it stayed full (a resource review, 2026-12-06).
   */
  readonly #full: Refusals;
  /**
   * Postgres refused a write as read-only (25006): it answers, reads work, so no outage either;
   * each refused write is a 503 (`unavailableError`), and the operator must learn why.
   */
  readonly #readOnly: Refusals;
  /** When a write through the pool was last refused as read-only. */
  readOnlyAt: number | undefined;
  constructor(readonly sql: Sql, readonly log: Logger) {
    this.#full = new Refusals((refused) =>
      log.warn(
        "Postgres refuses new connections (max_connections reached); until it has room, " +
          "requests wait for the pool's open connections, or are answered 503 when it has none",
        { refused, at: addressOf(sql) },
      )
    );
    this.#readOnly = new Refusals((refused) =>
      log.warn(
        "Postgres refuses writes: the session is read-only (a standby, or a database set " +
          "read-only); writes are answered 503 until it takes them",
        { refused, at: addressOf(sql) },
      )
    );
  }

  noticed(error: unknown): void {
    // A failure is noted where it happened and again where it is translated (as a cause): once.
    if (noted(error)) return;
    const codes = errorCodes(error);
    if (codes.includes(TOO_MANY_CONNECTIONS)) return this.#full.noted();
    if (codes.includes(READ_ONLY)) {
      this.readOnlyAt = Date.now();
      return this.#readOnly.noted();
    }
    if (this.#checking || !isDatabaseOutage(error)) return;
    this.#checking = true;
    this.#watch(codes[0]).finally(() => this.#checking = false);
  }

  async #watch(reason: string | undefined): Promise<void> {
    if (await this.#reachable() !== false) return;
    this.log.warn("lost the connection to Postgres; requests fail with 503 until it is back", {
      reason,
      at: addressOf(this.sql),
    });
    const began = Date.now();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const reachable = await this.#reachable();
      if (reachable === undefined) return;
      if (reachable) {
        this.log.info("Postgres is reachable again", { downMs: Date.now() - began });
        return;
      }
    }
  }

  /** True when a query works, false when it fails, undefined once the pool was ended on purpose. */
  async #reachable(): Promise<boolean | undefined> {
    try {
      await this.sql`select 1`;
      return true;
    } catch (error) {
      return errorCodes(error).includes("CONNECTION_ENDED") ? undefined : false;
    }
  }
}

/** Errors a pool's watch was told of (see `DatabaseWatch.noticed`). */
const notedErrors = new WeakSet<object>();

/** Whether `error` or one of its causes was noted before; notes them all. */
function noted(error: unknown): boolean {
  let seen = false;
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    if (notedErrors.has(e)) seen = true;
    notedErrors.add(e);
    e = (e as { cause?: unknown }).cause;
  }
  return seen;
}

/** Refusals of one kind, logged at most once per REFUSALS_LOG_EVERY_MS with how many there were. */
class Refusals {
  readonly #pace = new LinePace(REFUSALS_LOG_EVERY_MS);
  #since = 0;
  readonly #log: (refused: number) => void;
  constructor(log: (refused: number) => void) {
    this.#log = log;
  }

  noted(): void {
    this.#since++;
    if (!this.#pace.due()) return;
    this.#log(this.#since);
    this.#since = 0;
  }
}

/** Where `sql` connects, as `host:port` (never the login), for an operator's log line. */
function addressOf(sql: Sql): string {
  const { host, port } = sql.options as { host?: string[]; port?: number[] };
  return (host ?? []).map((name, i) => `${name}:${port?.[i] ?? port?.[0] ?? 5432}`).join(",");
}

/** How recently a write refused as read-only still says the pool's database is read-only. */
const READ_ONLY_RECENTLY_MS = 30_000;

/**
 * Whether a write through `sql` was refused as read-only within READ_ONLY_RECENTLY_MS: what the
 * pool's own sessions say, where a new connection may say otherwise (a session keeps the
 * `default_transaction_read_only` it started with; shared/db_health.ts).
 */
export function refusedWritesLately(sql: Sql): boolean {
  const at = watches.get(sql)?.readOnlyAt;
  return at !== undefined && Date.now() - at < READ_ONLY_RECENTLY_MS;
}

/** Reports a failed query: an outage is logged once and watched until Postgres is back. */
export function noteDatabaseError(sql: Sql, error: unknown): void {
  watches.get(sql)?.noticed(error);
}
