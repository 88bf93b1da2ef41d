/** Catalog service process: config, connect, migrate, first admin, serve; drain on SIGTERM. */
import { Bus } from "@shared/bus.ts";
import { loadConfig, serviceDatabaseUrl } from "@shared/config.ts";
import { openDatabase } from "@shared/db.ts";
import { onShutdown, startOrExit } from "@shared/lifecycle.ts";
import { createLogger } from "@shared/log.ts";
import { ensureFirstAdmin } from "./admin.ts";
import { migrateCatalog, SCHEMA, startCatalog } from "./service.ts";

const config = loadConfig();
const log = createLogger("catalog", config.logLevel);
const jwtSecret = config.jwtSecret;
if (!jwtSecret) {
  log.error("Cannot start: JWT_SECRET is not set, and the catalog signs tokens the gateway checks");
  Deno.exit(1);
}
const sql = await startOrExit(log, "open the database", async () => {
  const sql = await openDatabase(serviceDatabaseUrl("catalog"), { schema: SCHEMA });
  const applied = await migrateCatalog(sql);
  if (applied.length) log.info("migrations applied", { applied });
  return sql;
});
const bus = await startOrExit(
  log,
  "connect to NATS",
  () =>
    Bus.connect({ url: config.natsUrl, prefix: config.busPrefix, name: "catalog", logger: log }),
);
const service = await startOrExit(log, "start the catalog", async () => {
  const service = await startCatalog({ sql, bus, config: { ...config, jwtSecret }, log });
  await ensureFirstAdmin({ sql, relay: service.relay, config, log });
  return service;
});
log.info("catalog ready", { instance: service.running.id });

onShutdown(log, async () => {
  await service.stop();
  await bus.close();
  await sql.end({ timeout: 5 });
});
