/** Discounts service process: config, connect, migrate, serve; drain on SIGTERM. */
import { Bus } from "@shared/bus.ts";
import { loadConfig, serviceDatabaseUrl } from "@shared/config.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import { createLogger } from "@shared/log.ts";
import { migrateDiscounts, SCHEMA, startDiscounts } from "./service.ts";

const config = loadConfig();
const log = createLogger("discounts", config.logLevel);
/** Several instances may start at once: `create schema if not exists` can race; try again. */
async function openAndMigrate(attempt = 1): Promise<{ sql: Sql; applied: string[] }> {
  try {
    const sql = await openDatabase(serviceDatabaseUrl("discounts"), { schema: SCHEMA });
    return { sql, applied: await migrateDiscounts(sql) };
  } catch (error) {
    if ((error as { code?: string })?.code !== "23505" || attempt >= 3) throw error;
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    return await openAndMigrate(attempt + 1);
  }
}
const { sql, applied } = await openAndMigrate();
if (applied.length) log.info("migrations applied", { applied });
const bus = await Bus.connect({
  url: config.natsUrl,
  prefix: config.busPrefix,
  name: "discounts",
  logger: log,
});
const service = await startDiscounts({ sql, bus, log });
log.info("discounts ready", { instance: service.running.id });

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  log.info("discounts stopping");
  await service.stop();
  await bus.close();
  await sql.end({ timeout: 5 });
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
