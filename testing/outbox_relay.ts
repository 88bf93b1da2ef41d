/**
 * A fact relay on a test database (its outbox installed) and a test bus (its fact stream made),
 * all removed on disposal, the relay stopped first: the set-up of the outbox and relay tests
 * (shared/facts_test.ts, shared/facts_relay_test.ts).
 *
 * @example
 * ```ts ignore
 * await using system = await outboxRelay({ schema: "demo" });
 * await system.relay.flush();
 * ```
 */
import { openDatabase } from "@shared/db.ts";
import { installOutbox } from "@shared/facts.ts";
import { deleteFactStream, ensureFactStream } from "@shared/fact_streams.ts";
import { FactRelay } from "@shared/fact_relay.ts";
import { createLogger, type Logger } from "@shared/log.ts";
import { testBus, testDatabase } from "@shared/testing.ts";

export interface OutboxRelayOptions {
  /** The schema the outbox lives in (default `relay`). */
  schema?: string;
  /** The pool's size (default 10). */
  max?: number;
  /** The relay's logger (default: errors only). */
  logger?: Logger;
}

export async function outboxRelay(options: OutboxRelayOptions = {}) {
  const db = await testDatabase();
  const b = await testBus();
  const sql = await openDatabase(db.url, { schema: options.schema ?? "relay", max: options.max });
  await installOutbox(sql);
  const stream = await ensureFactStream(b.bus);
  const relay = new FactRelay(sql, b.bus, options.logger ?? createLogger("test", "error"));
  return {
    sql,
    databaseUrl: db.url,
    bus: b.bus,
    stream,
    relay,
    async [Symbol.asyncDispose]() {
      await relay.stop();
      await deleteFactStream(b.bus);
      await sql.end();
      await b[Symbol.asyncDispose]();
      await db[Symbol.asyncDispose]();
    },
  };
}
