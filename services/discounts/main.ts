/** Discounts service process: migrate, serve, follow catalog facts; drain on SIGTERM. */
import { loadConfig } from "@shared/config.ts";
import { runService } from "@shared/lifecycle.ts";
import { migrateDiscounts, SCHEMA, startDiscounts } from "./service.ts";

await runService(loadConfig(), {
  name: "discounts",
  schema: SCHEMA,
  migrate: migrateDiscounts,
  start: ({ sql, bus, config, log }) =>
    startDiscounts({ sql, bus, log, accessTtlMs: config.accessCacheTtlMs }),
});
