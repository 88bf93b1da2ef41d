/**
 * A backup of one schema of a test database with the operator's tools (`pg_dump -Fc`,
 * `pg_restore --clean`), as the README's "Backups and restores" takes them: for tests of what a
 * service does with a database restored older than the bus.
 *
 * @example
 * ```ts ignore
 * await using backup = await backUpSchema(db.url, "discounts");
 * // ... changes ...
 * await backup.restore();
 * ```
 */
import assert from "node:assert/strict";

export interface SchemaBackup extends AsyncDisposable {
  /** Puts the schema back as it was when backed up (its tables dropped and made again). */
  restore(): Promise<void>;
}

async function run(tool: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(tool, { args, stderr: "piped" }).output();
  assert.equal(code, 0, `${tool}: ${new TextDecoder().decode(stderr)}`);
}

/** Backs up `schema` of the database at `url` now; the file is removed on dispose. */
export async function backUpSchema(url: string, schema: string): Promise<SchemaBackup> {
  const file = await Deno.makeTempFile({ suffix: ".dump" });
  await run("pg_dump", ["-Fc", "-n", schema, "-f", file, url]);
  return {
    restore: () => run("pg_restore", ["--clean", "--if-exists", "-n", schema, "-d", url, file]),
    [Symbol.asyncDispose]: () => Deno.remove(file),
  };
}
