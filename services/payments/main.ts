/** Payments service process: config, connect, migrate, serve; drain on SIGTERM. */
import { Bus } from "@shared/bus.ts";
import { loadConfig, serviceDatabaseUrl } from "@shared/config.ts";
import { openDatabase } from "@shared/db.ts";
import { createLogger } from "@shared/log.ts";
import { parseEncryptionKey } from "./crypto.ts";
import { migratePayments, SCHEMA, startPayments } from "./service.ts";

const config = loadConfig();
const log = createLogger("payments", config.logLevel);
if (config.paymentsEncryptionKey) {
  try {
    parseEncryptionKey(config.paymentsEncryptionKey);
  } catch (error) {
    log.error((error as Error).message);
    Deno.exit(1);
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
const sql = await openDatabase(serviceDatabaseUrl("payments"), { schema: SCHEMA });
const applied = await migratePayments(sql);
if (applied.length) log.info("migrations applied", { applied });
const bus = await Bus.connect({
  url: config.natsUrl,
  prefix: config.busPrefix,
  name: "payments",
  logger: log,
});
const service = await startPayments({ sql, bus, config, log });
log.info("payments ready", { instance: service.running.id });

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  log.info("payments stopping");
  await service.stop();
  await bus.close();
  await sql.end({ timeout: 5 });
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
