/**
 * A service's schema belongs to one system, named by its `BUS_PREFIX`: the first process to start
 * on a schema marks it with its prefix, and a process of another system refuses to start there.
 * Two systems on one database would each drain the other's outbox into its own fact stream (the
 * relay publishes what its schema's outbox holds, whoever wrote it): an operator review
 * (2026-12-06) saw 1 of 200 writes announced on the other system's stream, without a word.
 *
 * A system whose prefix an operator changes on purpose moves its mark with the statement the
 * refusal names (README "Configuration").
 *
 * @example
 * ```ts ignore
 * await claimSchema(sql, "catalog", config.busPrefix);
 * ```
 */
import { advisoryXactLock, type Sql } from "./db.ts";

/** The table of the one row that names a schema's system. */
const MARK_TABLE = "bus_system";

/** The statement that hands `schema` over to the system of `prefix` (quoted for the operator). */
export function handOverStatement(schema: string, prefix: string): string {
  return `UPDATE ${schema}.${MARK_TABLE} SET bus_prefix = '${prefix.replaceAll("'", "''")}'`;
}

/**
 * Marks `schema` as the system's of `prefix` if nothing marked it yet; throws when another system's
 * prefix marked it. Under the schema's migration lock, so instances starting at once do not race.
 */
export async function claimSchema(sql: Sql, schema: string, prefix: string): Promise<void> {
  const owner = await sql.begin(async (tx) => {
    await advisoryXactLock(tx, `migrate:${schema}`);
    await tx`create table if not exists ${tx(schema)}.${tx(MARK_TABLE)} (
      only_row boolean primary key default true check (only_row),
      bus_prefix text not null,
      marked_at timestamptz not null default now())`;
    await tx`insert into ${tx(schema)}.${tx(MARK_TABLE)} (bus_prefix) values (${prefix})
      on conflict (only_row) do nothing`;
    const [row] = await tx`select bus_prefix from ${tx(schema)}.${tx(MARK_TABLE)}`;
    return row.bus_prefix as string;
  });
  if (owner === prefix) return;
  throw new Error(
    `Cannot use schema "${schema}": another system (BUS_PREFIX=${
      JSON.stringify(owner)
    }) uses it, ` +
      `and this process has BUS_PREFIX=${JSON.stringify(prefix)}. Two systems on one database ` +
      `announce each other's changes: give each its own database (DATABASE_URL), or, if this ` +
      `system's prefix changed on purpose, run ${handOverStatement(schema, prefix)}`,
  );
}
