/**
 * The accounts lock (handlers/accounts.ts) when the instance holding it stops answering: a frozen
 * process (a paused VM, SIGSTOP) or one cut off by the network keeps its connection open, so
 * Postgres would keep the lock until TCP gives up (hours) and every link, unlink and webhook of
 * every instance would answer 503. The holder's session must end once it has sat idle for a whole
 * Stripe call plus a margin, also on the background path, which has no request deadline.
 */
import assert from "node:assert/strict";
import { openDatabase, type Sql } from "@shared/db.ts";
import { testDatabase } from "@shared/testing.ts";
import { eventually } from "@testing/eventually.ts";
import { startFakeStripe } from "./fake_stripe.ts";
import { migratePayments, SCHEMA } from "./service.ts";
import { ACCOUNTS_LOCK } from "./store/authorizations.ts";

const STRIPE_TIMEOUT_MS = 3_000;
/** STRIPE_TIMEOUT_MS plus the margin handlers/accounts.ts allows, plus slack for a busy machine. */
const FREED_WITHIN_MS = STRIPE_TIMEOUT_MS + 1_000 + 1_500;

/** True when the accounts lock is free now (taken and released again at once). */
async function lockFree(sql: Sql): Promise<boolean> {
  return await sql.begin(async (tx) => {
    const [{ got }] = await tx`select pg_try_advisory_xact_lock(hashtext(${ACCOUNTS_LOCK})) as got`;
    return got as boolean;
  });
}

/** A child process running one background release (`_release_child.ts`); killed on dispose. */
function releaseChild(databaseUrl: string, stripe: { url: string }, keys: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_release_child.ts", import.meta.url).pathname,
      databaseUrl,
      stripe.url,
      ...keys,
      String(STRIPE_TIMEOUT_MS),
    ],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    child,
    async [Symbol.asyncDispose]() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

Deno.test("[payments] a frozen process holding the accounts lock in a release loses it in bounded time", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: SCHEMA, max: 2 });
  try {
    await migratePayments(sql);
    const keys = ["sk_test_frozen", "ca_frozen"];
    await using stripe = await startFakeStripe({ secretKey: keys[0], clientId: keys[1] });
    stripe.connected.add("acct_frozen");
    stripe.deauthorizeDelayMs = 2_500;
    await using release = releaseChild(db.url, stripe, keys);
    // The release holds the lock while Stripe is asked to deauthorize: then it freezes.
    await eventually(
      () => stripe.calls.some((call) => call.path === "/oauth/deauthorize"),
      10_000,
      "the release to reach Stripe",
    );
    release.child.kill("SIGSTOP");
    const frozenAt = performance.now();
    assert.equal(await lockFree(sql), false, "the frozen release holds the lock");
    await eventually(() => lockFree(sql), FREED_WITHIN_MS, "the frozen holder's lock to be freed");
    const heldMs = performance.now() - frozenAt;
    assert.ok(heldMs < FREED_WITHIN_MS, `freed after ${Math.round(heldMs)} ms`);
  } finally {
    await sql.end();
  }
});
