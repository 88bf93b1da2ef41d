/** Catalog service process: config, connect, migrate, first admin, serve; drain on SIGTERM. */
import { Bus } from "@shared/bus.ts";
import { loadConfig, serviceDatabaseUrl } from "@shared/config.ts";
import { openDatabase } from "@shared/db.ts";
import { createLogger } from "@shared/log.ts";
import { ensureFirstAdmin } from "./admin.ts";
import { migrateCatalog, SCHEMA, startCatalog } from "./service.ts";

const config = loadConfig();
const log = createLogger("catalog", config.logLevel);
if (!config.jwtSecret) {
  log.error("JWT_SECRET is not set: the catalog signs tokens the gateway must verify");
  Deno.exit(1);
}
const sql = await openDatabase(serviceDatabaseUrl("catalog"), { schema: SCHEMA });
const applied = await migrateCatalog(sql);
if (applied.length) log.info("migrations applied", { applied });
const bus = await Bus.connect({
  url: config.natsUrl,
  prefix: config.busPrefix,
  name: "catalog",
  logger: log,
});
const service = await startCatalog({
  sql,
  bus,
  config: { ...config, jwtSecret: config.jwtSecret },
  log,
});
await ensureFirstAdmin({ sql, relay: service.relay, config, log });
log.info("catalog ready", { instance: service.running.id });

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  log.info("catalog stopping");
  await service.stop();
  await bus.close();
  await sql.end({ timeout: 5 });
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
