/**
 * The database side of the Dredd hooks: one connection to the catalog schema of the run's
 * database, and the reset that empties it before each transaction so every transaction starts
 * from the fixtures its own hook creates (ids start again at 1).
 *
 * @example
 * ```ts ignore
 * import { openFixtureDatabase, resetCatalog } from "./reset.ts";
 * const sql = openFixtureDatabase(Deno.env.get("DATABASE_URL")!);
 * await resetCatalog(sql);
 * await sql.end();
 * ```
 */
import postgres from "postgres";

export type Sql = postgres.Sql;

/** The catalog service's schema (services/catalog/service.ts `SCHEMA`). */
export const CATALOG_SCHEMA = "catalog";

/**
 * Kept across resets: the fixed roles the migration inserts, the migration ledger, and the
 * fact outbox (the relay's queue, not fixture data: emptying it under the relay would only drop
 * facts in flight).
 */
const KEEP = ["roles", "schema_migrations", "outbox"];

/** A setting the Dredd runner (scripts/dredd.ts) passes to the hooks; a missing one fails loudly. */
export function hookEnv(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`Cannot run the Dredd hooks: ${name} is not set`);
  return value;
}

let shared: Sql | undefined;

/** The run's fixture database, opened once and shared by every hook file. */
export function fixtureDatabase(): Sql {
  shared ??= openFixtureDatabase(hookEnv("DATABASE_URL"));
  return shared;
}

/** Closes the shared fixture database (every hook file's afterAll may call it). */
export async function closeFixtureDatabase(): Promise<void> {
  const sql = shared;
  shared = undefined;
  await sql?.end({ timeout: 5 });
}

/** One connection is enough: hooks run one transaction at a time. */
export function openFixtureDatabase(url: string): Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: CATALOG_SCHEMA, application_name: "dredd-hooks" },
  });
}

let tables: Promise<string[]> | undefined;

async function catalogTables(sql: Sql): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`select tablename as name from pg_tables
    where schemaname = ${CATALOG_SCHEMA} and tablename <> all(${KEEP}) order by tablename`;
  if (!rows.length) throw new Error(`Cannot reset: schema ${CATALOG_SCHEMA} has no tables yet`);
  return rows.map((row) => row.name);
}

/** Empties every catalog table but the kept ones and restarts their ids at 1. */
export async function resetCatalog(sql: Sql): Promise<void> {
  // Listed once per run: migrations ran before Dredd started.
  tables ??= catalogTables(sql).catch((error) => {
    tables = undefined;
    throw error;
  });
  const names = (await tables).map((name) => `${CATALOG_SCHEMA}.${name}`);
  await sql`truncate table ${sql(names)} restart identity cascade`;
}
