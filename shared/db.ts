/**
 * Postgres access for services: one postgres.js pool per service, pinned to the service's own
 * schema, forward-only SQL migrations, and the single translation of database errors.
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
import { ApiError, BadRequestError, ConflictError, UnprocessableError } from "./errors.ts";

export type Sql = postgres.Sql;

const identifier = /^[a-z_][a-z0-9_]*$/;

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, "")) || "postgres";
}

/**
 * Services start together: when two create the same database or schema at once, the loser
 * gets "already exists" (42P04/42P06) or a unique violation on the catalog (23505).
 */
function ignoreIfCreatedMeanwhile(error: { code?: string }): void {
  if (!["42P04", "42P06", "23505"].includes(error?.code ?? "")) throw error;
}

/** Creates the database named in `url` if it does not exist yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
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
}

/** Opens a pool whose connections see only `schema` (plus `public` for extensions). */
export async function openDatabase(url: string, options: OpenOptions): Promise<Sql> {
  if (!identifier.test(options.schema)) {
    throw new Error(`Cannot open database: "${options.schema}" is not a valid schema name`);
  }
  await ensureDatabase(url);
  const sql = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connection: { search_path: `${options.schema},public`, application_name: options.schema },
    transform: { undefined: null },
  });
  await sql`create schema if not exists ${sql(options.schema)}`.catch(ignoreIfCreatedMeanwhile);
  return sql;
}

export interface MigrateOptions {
  schema: string;
  /** Folder of `NNNN_name.sql` files, applied in name order, each once, each in a transaction. */
  dir: URL;
}

/** Applies pending migrations; safe when several instances start at once (advisory lock). */
export async function migrate(sql: Sql, options: MigrateOptions): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(options.dir)) {
    if (entry.isFile && /^\d{4}_[a-z0-9_]+\.sql$/.test(entry.name)) files.push(entry.name);
  }
  files.sort();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${"migrate:" + options.schema}))`;
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
  });
  return applied;
}

/**
 * The one place database errors become API errors: unique violations are conflicts, bad
 * values are 422/400, everything else stays an unknown (500) error for the log.
 */
export function translateDbError(error: unknown, messages: { conflict?: string } = {}): unknown {
  if (error instanceof ApiError) return error;
  const code = (error as { code?: string })?.code;
  switch (code) {
    case "23505":
      return new ConflictError(messages.conflict ?? "Cannot save: the object already exists", {
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
      return error;
  }
}
