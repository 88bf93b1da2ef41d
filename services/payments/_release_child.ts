/**
 * A payments instance reduced to one background release (`releaseQueued` of one queued account),
 * run as its own process so a test can freeze it (SIGSTOP) while it holds the accounts lock and
 * waits on Stripe. Arguments: database URL, Stripe URL, platform secret key, Connect client id,
 * STRIPE_TIMEOUT_MS.
 */
import { openDatabase } from "@shared/db.ts";
import { createLogger } from "@shared/log.ts";
import { createBackground, type PaymentsContext } from "./context.ts";
import { createSecretBox } from "./crypto.ts";
import { queueRelease, releaseQueued, stopReleaseRetries } from "./handlers/accounts.ts";
import { SCHEMA } from "./service.ts";

const [databaseUrl, connectUrl, secretKey, clientId, timeout] = Deno.args;
const sql = await openDatabase(databaseUrl, { schema: SCHEMA, max: 1 });
// Only what a release reads of a context (and its background, for a retry after an outage).
const log = createLogger("payments");
const ctx = {
  sql,
  box: await createSecretBox(btoa("frozen release key".padEnd(32, "!"))),
  config: {
    stripeTimeoutMs: Number(timeout),
    stripeSecretKey: secretKey,
    stripeClientId: clientId,
    stripeConnectUrl: connectUrl,
  },
  log,
  background: createBackground(log),
} as unknown as PaymentsContext;
await queueRelease(ctx, sql, { id: "acct_frozen", lookup: "no authorization uses this account" });
await releaseQueued(ctx);
stopReleaseRetries(ctx);
await sql.end();
