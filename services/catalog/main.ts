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
  // Thrown, as a bad setting is: the process ends with one plain line (shared/lifecycle.ts).
  throw new Error(
    "Cannot start: JWT_SECRET is not set, and the catalog signs the tokens the gateway checks. " +
      "Set JWT_SECRET to the secret the gateway verifies tokens with.",
  );
}
await runService(config, {
  name: "catalog",
  schema: SCHEMA,
  migrate: migrateCatalog,
  start: ({ sql, bus }) => startCatalog({ sql, bus, config: { ...config, jwtSecret }, log }),
  ready: (service, { sql }) => ensureFirstAdmin({ sql, relay: service.relay, config, log }),
}, log);
