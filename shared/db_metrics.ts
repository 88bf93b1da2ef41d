/**
 * How full a service's Postgres pool is, as metrics: its connections by state, from
 * `pg_stat_activity`, and its size. Each pool has an application name of its own (shared/db.ts),
 * so every instance reports its own pool. Read on a connection apart from the pool
 * (`metricsClient`): through the pool, the read waited behind the very requests that filled it,
 * and a full pool never showed. Queries waiting for a free connection are not counted:
 * postgres.js keeps that queue inside its closure, with no count exposed.
 *
 * @example
 * ```ts ignore
 * const unwatch = watchPool(sql);
 * // on shutdown:
 * unwatch();
 * ```
 */
import { metricsClient, type Sql } from "./db.ts";
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
    // A pool opened elsewhere (a test's) is read through itself; not counting the connection
    // that asks then (it would always show one active).
    const client = metricsClient(sql) ?? sql;
    const rows = await client`select coalesce(state, 'unknown') as state, count(*)::int as n
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
