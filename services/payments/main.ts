/** Payments service process: check the Stripe settings, migrate, serve; drain on SIGTERM. */
import { loadConfig } from "@shared/config.ts";
import { exitWithError, runService, userCausedLine } from "@shared/lifecycle.ts";
import { createLogger } from "@shared/log.ts";
import { createSecretBox, parseEncryptionKey } from "./crypto.ts";
import { checkKeyOpensStoredKeys } from "./handlers/accounts.ts";
import { migratePayments, SCHEMA, startPayments } from "./service.ts";

const config = loadConfig();
const log = createLogger("payments", config.logLevel);
if (config.paymentsEncryptionKey) {
  try {
    parseEncryptionKey(config.paymentsEncryptionKey);
  } catch (error) {
    // One plain line naming the fix, as for every setting a process refuses (it was a JSON log
    // line that named none: an operator review, 2026-12-05).
    exitWithError(`payments: ${userCausedLine(error) ?? (error as Error).message}`);
  }
} else {
  log.warn("PAYMENTS_ENCRYPTION_KEY is not set: linking Stripe accounts answers 503");
}
if (!config.stripeSecretKey || !config.stripeClientId) {
  log.warn("STRIPE_SECRET_KEY or STRIPE_CLIENT_ID is not set: linking Stripe answers 503");
}
if (!config.stripeWebhookSecret) {
  log.warn("STRIPE_WEBHOOK_SECRET is not set: Stripe webhooks answer 503");
}
await runService(config, {
  name: "payments",
  schema: SCHEMA,
  migrate: migratePayments,
  start: async ({ sql, bus }) => {
    // Before serving: an instance with another key would answer each change of a stored link
    // 503 (startPayments keeps that answer for keys that differ between running instances).
    if (config.paymentsEncryptionKey) {
      await checkKeyOpensStoredKeys(sql, await createSecretBox(config.paymentsEncryptionKey));
    }
    return await startPayments({ sql, bus, config, log });
  },
}, log);
