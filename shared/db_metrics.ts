/**
 * How full a service's Postgres pool is, as metrics: its connections by state, from
 * `pg_stat_activity` (postgres.js keeps its pool's queues to itself), and its size. Each pool has
 * an application name of its own (shared/db.ts), so every instance reports its own pool.
 *
 * @example
 * ```ts ignore
 * const unwatch = watchPool(sql);
 * // on shutdown:
 * unwatch();
 * ```
 */
import type { Sql } from "./db.ts";
import { metrics } from "./metrics.ts";

const connections = metrics.gauge(
  "oe_db_pool_connections",
  "Connections of this process's pool by state (active: running a statement; " +
    "idle in transaction: holding a transaction open; idle: free)",
  ["state"],
);
const size = metrics.gauge("oe_db_pool_max", "Connections the pool may open at most");

/** Reports the pool's use before each metrics snapshot; returns how to stop. */
export function watchPool(sql: Sql): () => void {
  const connection = sql.options.connection as { application_name?: string };
  const name = connection.application_name ?? "";
  size.series().set(sql.options.max);
  return metrics.collect("db_pool", async () => {
    // Not counting the connection that asks (it would always show one active).
    const rows = await sql`select coalesce(state, 'unknown') as state, count(*)::int as n
      from pg_stat_activity
      where application_name = ${name} and pid <> pg_backend_pid()
      group by 1`;
    const counts = new Map<string, number>([["active", 0], ["idle", 0], [
      "idle in transaction",
      0,
    ]]);
    for (const row of rows) counts.set(row.state, row.n);
    for (const [state, n] of counts) connections.series(state).set(n);
  });
}
