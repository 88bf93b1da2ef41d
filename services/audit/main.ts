/** Audit service process: migrate, consume facts and serve; drain on SIGTERM. */
import { loadConfig } from "@shared/config.ts";
import { runService } from "@shared/lifecycle.ts";
import { migrateAudit, SCHEMA, startAudit } from "./service.ts";

await runService(loadConfig(), {
  name: "audit",
  schema: SCHEMA,
  migrate: migrateAudit,
  start: ({ sql, bus, config, log }) =>
    startAudit({ sql, bus, log, accessTtlMs: config.accessCacheTtlMs }),
});
