/**
 * A table lock, or any transaction (`holdTransaction`: rows locked, a change not yet committed),
 * held from a session of the test's own: requests that meet it wait inside their statement until
 * the test releases it, so a test can hold a request mid-write (a retry meets the first still
 * running; a deadline runs out under the lock; an account's deletion commits under a write).
 *
 * @example
 * ```ts ignore
 * await using lock = await holdTableLock(system.databaseUrl, "catalog.event_topics");
 * const pending = system.call("POST", "/v1/event-topics", { token, body });
 * await lock.release();
 * ```
 */
import postgres from "postgres";
import { eventually } from "./eventually.ts";

export interface TableLock extends AsyncDisposable {
  /** The holding session's connection (usable again once the transaction has ended). */
  sql: postgres.Sql;
  /** Ends the locking transaction; resolves when it has ended. */
  release(): Promise<void>;
}

/**
 * Takes `table` (schema-qualified) in exclusive mode (writes wait, reads go on), or in access
 * exclusive mode (reads wait too); resolves once the lock is held.
 */
export async function holdTableLock(
  databaseUrl: string,
  table: string,
  options: { reads?: "go on" | "wait" } = {},
): Promise<TableLock> {
  return await holdTransaction(databaseUrl, async (tx) => {
    if (options.reads === "wait") await tx`lock table ${tx(table)} in access exclusive mode`;
    else await tx`lock table ${tx(table)} in exclusive mode`;
  });
}

/**
 * A transaction of the test's own that runs `begin` (rows locked, a change made but not
 * committed), then stays open until `release()`, which commits it: what a request racing it
 * waits for, or meets once it is committed.
 *
 * @example
 * ```ts ignore
 * await using held = await holdTransaction(system.databaseUrl, (tx) =>
 *   tx`select id from catalog.users where id = ${id} for update`);
 * ```
 */
export async function holdTransaction(
  databaseUrl: string,
  begin: (tx: postgres.TransactionSql) => Promise<unknown>,
): Promise<TableLock> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const held = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const transaction = sql.begin(async (tx) => {
    await begin(tx);
    held.resolve();
    await release.promise;
  });
  transaction.catch((error) => held.reject(error));
  const end = async () => {
    release.resolve();
    await transaction;
  };
  try {
    await held.promise;
  } catch (error) {
    await sql.end();
    throw error;
  }
  return {
    sql,
    release: end,
    async [Symbol.asyncDispose]() {
      await end().catch(() => {}); // Released already, or failed where the test saw it.
      await sql.end();
    },
  };
}

/**
 * Waits until at least `count` sessions of `sql`'s database wait for a lock (a row, a table or
 * an advisory lock): the requests a test holds have reached the change it holds them at. A
 * fixed pause instead lets a slow request arrive after the lock is gone, and the overlap the
 * test is about never happens. `count` may be a function, asked at each look: a count that
 * falls as requests answer without ever meeting the lock.
 *
 * @example
 * ```ts ignore
 * const pending = system.call("PATCH", path, { token, body });
 * await untilWaitingForLocks(system.sql, { count: 1, what: "the PATCH" });
 * ```
 */
export async function untilWaitingForLocks(
  sql: postgres.Sql,
  options: { count: number | (() => number); what: string },
): Promise<void> {
  await eventually(
    async () => {
      const [{ waiting }] = await sql`select count(*)::int as waiting from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      const count = typeof options.count === "number" ? options.count : options.count();
      return waiting >= count;
    },
    5_000,
    `${options.what} to wait for a lock`,
  );
}
