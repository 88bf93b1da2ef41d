/** Catalog service process: migrate, serve, make the first admin; drain on SIGTERM. */
import { loadConfig } from "@shared/config.ts";
import { runService } from "@shared/lifecycle.ts";
import { createLogger } from "@shared/log.ts";
import { checkFirstAdminSettings, ensureFirstAdmin } from "./admin.ts";
import { migrateCatalog, SCHEMA, startCatalog } from "./service.ts";

const config = loadConfig();
checkFirstAdminSettings(config);
const log = createLogger("catalog", config.logLevel);
const jwtSecret = config.jwtSecret;
if (!jwtSecret) {
  log.error("Cannot start: JWT_SECRET is not set, and the catalog signs tokens the gateway checks");
  Deno.exit(1);
}
await runService(config, {
  name: "catalog",
  schema: SCHEMA,
  migrate: migrateCatalog,
  start: ({ sql, bus }) => startCatalog({ sql, bus, config: { ...config, jwtSecret }, log }),
  ready: (service, { sql }) => ensureFirstAdmin({ sql, relay: service.relay, config, log }),
}, log);
