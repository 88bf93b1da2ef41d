/** Audit service process: config, connect, migrate, consume and serve; drain on SIGTERM. */
import { Bus } from "@shared/bus.ts";
import { loadConfig, serviceDatabaseUrl } from "@shared/config.ts";
import { openDatabase } from "@shared/db.ts";
import { createLogger } from "@shared/log.ts";
import { migrateAudit, SCHEMA, startAudit } from "./service.ts";

const config = loadConfig();
const log = createLogger("audit", config.logLevel);
const sql = await openDatabase(serviceDatabaseUrl("audit"), { schema: SCHEMA });
const applied = await migrateAudit(sql);
if (applied.length) log.info("migrations applied", { applied });
const bus = await Bus.connect({
  url: config.natsUrl,
  prefix: config.busPrefix,
  name: "audit",
  logger: log,
});
const service = await startAudit({ sql, bus, log });
log.info("audit ready", { instance: service.running.id });

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  log.info("audit stopping");
  await service.stop();
  await bus.close();
  await sql.end({ timeout: 5 });
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
