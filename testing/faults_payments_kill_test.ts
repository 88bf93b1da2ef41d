/**
 * A payments process killed while a link waits in Postgres, after Stripe has connected the account
 * and before the row is stored: the client's answer is a 504 and no row exists, so the account
 * must not stay connected. Its release is queued on a connection of its own as soon as Stripe
 * names the account, and a payments instance started later disconnects it (a fault review: the
 * account id lived only in the dead process's memory, and the account stayed connected for good).
 * The catalog, payments and the gateway run as subprocesses; payments talks to a fake Stripe.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { freePort } from "@shared/net.ts";
import { testDatabase } from "@shared/testing.ts";
import { eventually } from "./eventually.ts";
import { factBus } from "./fact_bus.ts";
import { adminToken, fakeStripeEnv, faultEnv, spawnFaultSystem } from "./fault_env.ts";
import { spawnProcess } from "./processes.ts";
import { holdTableLock, untilWaitingForLocks } from "./table_lock.ts";

const JSONAPI = "application/vnd.api+json";

Deno.test("[faults] a payments process killed before a link's commit leaves its account to be released", async () => {
  await using stack = new AsyncDisposableStack();
  const database = stack.use(await testDatabase());
  const testbus = stack.use(await factBus());
  const { stripe, env: stripeEnv } = await fakeStripeEnv(stack, 1000);
  const port = freePort();
  const env = {
    ...faultEnv({
      databaseUrl: database.url,
      natsUrl: testbus.natsUrl,
      prefix: testbus.prefix,
      port,
      requestTimeoutMs: 3000,
    }),
    ...stripeEnv,
  };
  const processes = await spawnFaultSystem(stack, env, [
    ["catalog", "catalog"],
    ["payments", "payments"],
  ]);
  const url = `http://127.0.0.1:${port}`;
  const token = await adminToken(url, env);
  const send = (path: string, body: unknown) =>
    fetch(`${url}${path}`, {
      method: "POST",
      headers: { "Content-Type": JSONAPI, Authorization: `JWT ${token}` },
      body: JSON.stringify(body),
    });
  const starts = new Date(Date.now() + 24 * 3600_000);
  const event = await send("/v1/events", {
    data: {
      type: "event",
      attributes: {
        name: "Killed link",
        "starts-at": starts.toISOString(),
        "ends-at": new Date(starts.getTime() + 7200_000).toISOString(),
        state: "published",
        "can-pay-by-stripe": true,
      },
    },
  });
  assert.equal(event.status, 201);
  const eventId = (await event.json()).data.id;
  const sql = stack.adopt(postgres(database.url, { max: 1, onnotice: () => {} }), (s) => s.end());

  // The link's insert waits behind this lock, after Stripe has answered; then payments dies.
  const lock = stack.use(await holdTableLock(database.url, "payments.stripe_authorizations"));
  const grant = stripe.grant();
  const linking = send("/v1/stripe-authorizations", {
    data: {
      type: "stripe-authorization",
      attributes: { "stripe-auth-code": grant.code },
      relationships: { event: { data: { type: "event", id: eventId } } },
    },
  });
  await untilWaitingForLocks(sql, { count: 1, what: "the link's insert" });
  assert.ok(stripe.connected.has(grant.accountId), "Stripe connected the account");
  await processes.payments.kill("SIGKILL");
  const answer = await linking;
  assert.equal(answer.status, 504, await answer.text());
  await lock.release();
  const [{ rows }] = await sql`select count(*)::int as rows from payments.stripe_authorizations`;
  assert.equal(rows, 0);

  // Queued before the link's deadline passed, due after it: a pass at the next start takes it.
  await eventually(
    async () => {
      const [{ due }] = await sql`select count(*)::int as due
        from payments.stripe_account_releases where not_before <= now()`;
      return due === 1;
    },
    15_000,
    "the account's release to be queued and due",
  );
  const restarted = stack.use(spawnProcess("payments-2", "services/payments/main.ts", env));
  await restarted.waitForLine("payments ready");
  await eventually(() => !stripe.connected.has(grant.accountId), 10_000, "the account's release");
  await eventually(
    async () => {
      const [{ left }] = await sql`select count(*)::int as left
        from payments.stripe_account_releases`;
      return left === 0;
    },
    5_000,
    "the release to be done",
  );
});
