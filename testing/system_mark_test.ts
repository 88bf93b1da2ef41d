/**
 * One database, one system: a service process refuses to start on a schema another system (another
 * `BUS_PREFIX`) marked, instead of draining that system's outbox into its own fact stream (an
 * operator review, 2026-12-06: 1 of 200 writes announced on the other system's stream). The mark
 * itself on the real Postgres, then real audit processes on a private JetStream server.
 */
import assert from "node:assert/strict";
import { openDatabase } from "@shared/db.ts";
import { freePort } from "@shared/net.ts";
import { claimSchema, handOverStatement } from "@shared/system_mark.ts";
import { testDatabase } from "@shared/testing.ts";
import { faultEnv } from "./fault_env.ts";
import { startNatsServer } from "./nats_server.ts";
import { readyOrExited, spawnProcess } from "./processes.ts";

Deno.test("[mark] the first system marks a schema; another is refused until it is handed over", async () => {
  await using database = await testDatabase();
  const sql = await openDatabase(database.url, { schema: "audit" });
  try {
    // Instances of one system starting at once all find their own mark.
    await Promise.all(Array.from({ length: 4 }, () => claimSchema(sql, "audit", "first")));
    await claimSchema(sql, "audit", "first");
    await assert.rejects(
      claimSchema(sql, "audit", "second"),
      (error: Error) => {
        assert.match(error.message, /another system \(BUS_PREFIX="first"\) uses it/);
        assert.ok(error.message.includes(handOverStatement("audit", "second")), error.message);
        return true;
      },
    );
    await sql.unsafe(handOverStatement("audit", "sec'ond"));
    await claimSchema(sql, "audit", "sec'ond");
    await assert.rejects(claimSchema(sql, "audit", "first"), /BUS_PREFIX="sec'ond"/);
  } finally {
    await sql.end();
  }
});

/** Starts an audit process of system `prefix` on `databaseUrl`: its outcome, ready or gone. */
async function auditOf(databaseUrl: string, natsUrl: string, prefix: string) {
  const env = faultEnv({ databaseUrl, natsUrl, prefix, port: freePort(), requestTimeoutMs: 3000 });
  await using audit = spawnProcess("audit", "services/audit/main.ts", env);
  const outcome = await readyOrExited(audit, "audit ready");
  return { outcome, lines: [...audit.lines] };
}

Deno.test("[mark] a service process of another system stops at start and says why", async () => {
  await using database = await testDatabase();
  await using nats = await startNatsServer({ jetStream: true });
  const first = await auditOf(database.url, nats.url, "first");
  assert.equal(first.outcome, "running", first.lines.join("\n"));
  const second = await auditOf(database.url, nats.url, "second");
  if (second.outcome === "running") assert.fail(`it started:\n${second.lines.join("\n")}`);
  assert.equal(second.outcome.code, 1);
  assert.match(
    second.lines.at(-1) ?? "",
    /^audit: Cannot open the database: Cannot use schema "audit": another system \(BUS_PREFIX="first"\) uses it, and this process has BUS_PREFIX="second"/,
  );
  const again = await auditOf(database.url, nats.url, "first");
  assert.equal(again.outcome, "running", again.lines.join("\n"));
});
