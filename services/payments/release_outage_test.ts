/**
 * Releases of unused Stripe accounts (handlers/accounts.ts) cut off by a Postgres outage: tried
 * again once Postgres is back, within seconds, not at the next RELEASE_RETRY_MS (30 s) pass, and
 * without a query storm while it is away. A private Postgres is stopped and started.
 */
import assert from "node:assert/strict";
import { openDatabase } from "@shared/db.ts";
import { eventually } from "@testing/eventually.ts";
import { startPostgresServer } from "@testing/postgres_server.ts";
import { recordingLogger } from "./_test_utils.ts";
import { createBackground, type PaymentsContext } from "./context.ts";
import { createSecretBox } from "./crypto.ts";
import { startFakeStripe } from "./fake_stripe.ts";
import { queueRelease, releaseQueued, stopReleaseRetries } from "./handlers/accounts.ts";
import { migratePayments, SCHEMA } from "./service.ts";
import { pendingReleases } from "./store/releases.ts";

/** Well under RELEASE_RETRY_MS (30 s), with room for a busy machine. */
const PROMPTLY_MS = 6_000;

Deno.test({
  name: "[payments] a release cut off by a Postgres outage is tried again soon after it is back",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using pg = await startPostgresServer();
    await using stripe = await startFakeStripe({ secretKey: "sk_test_outage", clientId: "ca_x" });
    const sql = await openDatabase(pg.url, { schema: SCHEMA, max: 2 });
    const logs: string[] = [];
    const log = recordingLogger(logs);
    // Only what a release reads of a context.
    const ctx = {
      sql,
      log,
      background: createBackground(log),
      box: await createSecretBox(btoa("release outage key".padEnd(32, "!"))),
      config: {
        stripeTimeoutMs: 3_000,
        stripeSecretKey: "sk_test_outage",
        stripeClientId: "ca_x",
        stripeConnectUrl: stripe.url,
      },
    } as unknown as PaymentsContext;
    const unused = { lookup: "no authorization uses this account" };
    const failedReleases = () =>
      logs.filter((line) => line.includes("cannot deauthorize an unused Stripe account yet"))
        .length;
    try {
      await migratePayments(sql);

      await t.step(
        "down when the pass starts: released soon after, few queries meanwhile",
        async () => {
          stripe.connected.add("acct_down");
          await queueRelease(ctx, sql, { id: "acct_down", ...unused });
          await pg.kill();
          ctx.background.run(() => releaseQueued(ctx));
          // The window the passes are counted in: the time under test, not a wait for anything.
          await new Promise((resolve) => setTimeout(resolve, 3_000));
          const passes = logs.filter((line) => line.includes("cannot read the Stripe accounts"));
          // 250, 500, 1000, 2000 ms apart: a handful, not one per reconnect pause.
          assert.ok(passes.length <= 6, `${passes.length} passes`);
          await pg.start();
          const back = Date.now();
          await eventually(() => !stripe.connected.has("acct_down"), PROMPTLY_MS, "the release");
          assert.ok(Date.now() - back < PROMPTLY_MS);
          await eventually(async () => await pendingReleases(sql) === 0, 2_000, "an empty queue");
        },
      );

      await t.step(
        "lost during the Stripe call: the release done soon after it is back",
        async () => {
          stripe.connected.add("acct_cut");
          stripe.deauthorizeDelayMs = 1_000;
          await queueRelease(ctx, sql, { id: "acct_cut", ...unused });
          ctx.background.run(() => releaseQueued(ctx));
          await eventually(
            () => stripe.calls.some((call) => call.form.stripe_user_id === "acct_cut"),
            5_000,
            "the release to reach Stripe",
          );
          const failedBefore = failedReleases();
          await pg.kill();
          // Stripe answers meanwhile; the release's transaction (its delete) is gone. Waited for:
          // after a fixed 1.5 s, a Stripe slower than that answered once Postgres was back, the
          // retry found the account still connected, and Stripe's "not connected" went untested.
          await eventually(() => !stripe.connected.has("acct_cut"), 5_000, "Stripe's answer");
          await eventually(() => failedReleases() > failedBefore, 5_000, "the release to fail");
          stripe.deauthorizeDelayMs = 0;
          await pg.start();
          await eventually(
            async () => await pendingReleases(sql).catch(() => -1) === 0,
            PROMPTLY_MS,
            "the interrupted release to be done",
          );
        },
      );
    } finally {
      stopReleaseRetries(ctx);
      await ctx.background.idle();
      await sql.end({ timeout: 1 });
    }
  },
});
