/**
 * A test database set read-only, as a standby reached after a failover or a maintenance window
 * leaves it: its `default_transaction_read_only`, and its sessions ended so that the pools' new
 * ones start read-only. The shared server's own settings are never touched.
 */
import postgres from "postgres";
import { databaseOf, withDatabase } from "@shared/postgres_url.ts";

/**
 * Sets the database at `url` read-only (or back) and ends its sessions (unless `endSessions` is
 * false: they keep what they started with); asked from the server's `postgres` database, whose
 * sessions are not read-only.
 */
export async function setDatabaseReadOnly(
  url: string,
  readOnly: boolean,
  options: { endSessions?: boolean } = {},
): Promise<void> {
  const name = databaseOf(url);
  const admin = postgres(withDatabase(url, "postgres"), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(
      `alter database "${name}" set default_transaction_read_only = ${readOnly ? "on" : "off"}`,
    );
    if (options.endSessions === false) return;
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name}`;
  } finally {
    await admin.end();
  }
}
