/**
 * A payments instance reduced to one background release (`releaseAccount`), run as its own
 * process so a test can freeze it (SIGSTOP) while it holds the accounts lock and waits on Stripe.
 * Arguments: database URL, Stripe URL, platform secret key, Connect client id, STRIPE_TIMEOUT_MS.
 */
import { openDatabase } from "@shared/db.ts";
import { createLogger } from "@shared/log.ts";
import type { PaymentsContext } from "./context.ts";
import { releaseAccount } from "./handlers/accounts.ts";
import { SCHEMA } from "./service.ts";

const [databaseUrl, connectUrl, secretKey, clientId, timeout] = Deno.args;
const timeoutMs = Number(timeout);
const sql = await openDatabase(databaseUrl, { schema: SCHEMA, max: 1 });
// Only what `releaseAccount` reads of a context.
const ctx = {
  sql,
  config: { stripeTimeoutMs: timeoutMs },
  log: createLogger("payments"),
} as unknown as PaymentsContext;
await releaseAccount(ctx, { connectUrl, secretKey, clientId, timeoutMs }, {
  id: "acct_frozen",
  lookup: "no authorization uses this account",
});
await sql.end();
