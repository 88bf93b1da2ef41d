/**
 * The private standby the failover tests stand on: it streams the primary's rows, refuses writes
 * while in recovery, and takes them once promoted.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { startPostgresServer, startStandby } from "./postgres_server.ts";
import { eventually, within } from "./eventually.ts";

const READ_ONLY_SQL_TRANSACTION = "25006";

/** A client on the `postgres` database (initdb's own: open_event does not exist on these). */
function connect(port: number) {
  return postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, {
    max: 1,
    connect_timeout: 2,
    onnotice: () => {},
  });
}

Deno.test({
  name: "[faults] a standby streams the primary's rows, refuses writes, and takes them promoted",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using primary = await startPostgresServer();
  await using standby = await startStandby(primary);
  await using stack = new AsyncDisposableStack();
  const writer = connect(primary.port);
  stack.defer(() => writer.end({ timeout: 1 }));
  const reader = connect(standby.port);
  stack.defer(() => reader.end({ timeout: 1 }));

  await writer`create table notes (body text)`;
  await writer`insert into notes values ('from the primary')`;
  const [{ recovering }] = await reader`select pg_is_in_recovery() as recovering`;
  assert.equal(recovering, true);
  await eventually(
    async () => {
      const rows = await reader`select body from notes`.catch(() => []);
      return rows.length === 1 && rows[0].body === "from the primary";
    },
    10_000,
    "the primary's row on the standby",
  );
  await assert.rejects(
    reader`insert into notes values ('on the standby')`,
    (error: { code?: string }) => error.code === READ_ONLY_SQL_TRANSACTION,
  );

  await primary.kill();
  await within(30_000, "promotion", standby.promote());
  await within(
    5_000,
    "a write on the promoted standby",
    reader`insert into notes values ('promoted')`,
  );
  const rows = await reader`select body from notes order by body`;
  assert.deepEqual(rows.map((row) => row.body), ["from the primary", "promoted"]);
});
