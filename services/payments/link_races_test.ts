/**
 * Links and unlinks that overlap (one account may serve several events). Each race is held open
 * on purpose: a slow fake Stripe, or a table lock of the test's own that stops writers mid-way
 * (testing/table_lock.ts), so each order is met on every run, not by luck.
 */
import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { exampleFact } from "@testing/facts.ts";
import { type CallResult, expectError, expectStatus } from "@testing/system.ts";
import { setDatabaseReadOnly } from "@testing/read_only.ts";
import { holdTableLock, holdTransaction } from "@testing/table_lock.ts";
import { linked, type PaymentsSystem, startPaymentsSystem, trashEvent } from "./_test_utils.ts";
import { applyCatalogFacts } from "./follow_catalog.ts";
import { releaseQueued } from "./handlers/accounts.ts";
import { pendingReleases } from "./store/releases.ts";
import { ACCOUNTS_LOCK } from "./store/authorizations.ts";
import type { FakeGrant } from "./fake_stripe.ts";
import { signStripePayload } from "./webhook_signature.ts";

function unlink(p: PaymentsSystem, id: string) {
  return p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token: p.system.admin.token });
}

function relink(p: PaymentsSystem, id: string, code: string) {
  return p.call("PATCH", `/v1/stripe-authorizations/${id}`, {
    token: p.system.admin.token,
    body: { data: { type: "stripe-authorization", id, attributes: { "stripe-auth-code": code } } },
  });
}

/** Resolves once Stripe has been asked to deauthorize `accountId` (its answer may be late). */
async function deauthorizeAsked(p: PaymentsSystem, accountId: string): Promise<void> {
  await eventually(
    () =>
      p.stripe.calls.some((call) =>
        call.path === "/oauth/deauthorize" && call.form.stripe_user_id === accountId
      ),
    5_000,
    "the deauthorization to reach Stripe",
  );
}

/** Sessions of the test database waiting for a lock (a row, a table or an advisory lock). */
async function lockWaiters(p: PaymentsSystem): Promise<number> {
  const [{ count }] = await p.sql`select count(*)::int as count from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'`;
  return count;
}

/** Account lookups of the stored authorizations (digests: the ids are sealed). */
async function storedAccounts(p: PaymentsSystem): Promise<Set<string>> {
  const rows = await p.sql`select account_lookup from stripe_authorizations`;
  return new Set(rows.map((row) => row.account_lookup as string));
}

/** Every account the platform is connected to has an authorization here (none orphaned). */
async function assertNoOrphan(p: PaymentsSystem): Promise<void> {
  const stored = await storedAccounts(p);
  const box = p.payments.context.box!;
  for (const account of p.stripe.connected) {
    assert.ok(stored.has(await box.digest(account)), "a connected account has no authorization");
  }
}

Deno.test("[payments] two DELETEs of events sharing an account: the account is deauthorized", async () => {
  await using p = await startPaymentsSystem();
  const first = await linked(p);
  const second = await linked(p, first.grant.accountId);
  // Both requests read the other's row, then wait to delete their own.
  await using lock = await holdTableLock(p.system.databaseUrl, "payments.stripe_authorizations");
  const replies = Promise.all([unlink(p, first.id), unlink(p, second.id)]);
  await eventually(async () => await lockWaiters(p) === 2, 5_000, "both DELETEs to wait");
  await lock.release();
  for (const reply of await replies) expectStatus(reply, 200);
  assert.equal((await storedAccounts(p)).size, 0);
  assert.ok(!p.stripe.connected.has(first.grant.accountId), "the account was deauthorized");
});

Deno.test("[payments] a POST for an account whose DELETE is at Stripe keeps it connected", async () => {
  await using p = await startPaymentsSystem({ env: { STRIPE_TIMEOUT_MS: "2000" } });
  const first = await linked(p);
  const other = await p.stripeEvent();
  p.stripe.deauthorizeDelayMs = 1000;
  const deleting = unlink(p, first.id);
  await deauthorizeAsked(p, first.grant.accountId);
  const grant = p.grant({ accountId: first.grant.accountId });
  const created = await p.link(other.owner.token, other.event.id, grant.code);
  expectStatus(await deleting, 200);
  expectStatus(created, 201);
  assert.ok(p.stripe.connected.has(grant.accountId), "the new link's account is connected");
  const [row] = await p.sql`select id from stripe_authorizations
    where event_id = ${other.event.id}`;
  assert.equal(String(row?.id), created.body.data.id);
  await p.payments.idle();
  await assertNoOrphan(p);
});

Deno.test("[payments] a PATCH while the DELETE is at Stripe: no account left without a row", async () => {
  await using p = await startPaymentsSystem({ env: { STRIPE_TIMEOUT_MS: "2000" } });
  const first = await linked(p);
  p.stripe.deauthorizeDelayMs = 1000;
  const deleting = unlink(p, first.id);
  await deauthorizeAsked(p, first.grant.accountId);
  const grant = p.grant();
  const patched = await relink(p, first.id, grant.code);
  expectStatus(await deleting, 200);
  await p.payments.idle();
  await assertNoOrphan(p);
  // The PATCH waited for the DELETE, then found nothing to re-link.
  expectError(patched, 404);
  assert.equal((await storedAccounts(p)).size, 0);
  assert.ok(!p.stripe.connected.has(first.grant.accountId));
  assert.ok(!p.stripe.connected.has(grant.accountId), "the new account is not left connected");
  assert.ok(!p.stripe.calls.some((call) => call.form.code === grant.code), "its code not spent");
});

Deno.test("[payments] an event deleted while a DELETE of another event on its account runs: deauthorized", async () => {
  await using p = await startPaymentsSystem();
  const first = await linked(p);
  const second = await linked(p, first.grant.accountId);
  await using lock = await holdTableLock(p.system.databaseUrl, "payments.stripe_authorizations");
  await trashEvent(p, first.cast.event.id);
  const deleted = exampleFact("catalog.event.deleted", { id: first.cast.event.id }, {
    actor: { id: "1", email: "admin@example.org" },
  });
  const done = Promise.all([
    applyCatalogFacts(p.payments.context, [deleted]),
    unlink(p, second.id),
  ]);
  await eventually(async () => await lockWaiters(p) === 2, 5_000, "both unlinks to wait");
  await lock.release();
  const [applied, reply] = await done;
  assert.deepEqual(applied.reject, []);
  expectStatus(reply, 200);
  assert.equal((await storedAccounts(p)).size, 0);
  assert.ok(!p.stripe.connected.has(first.grant.accountId), "the account was deauthorized");
});

/** The accounts lock, held by a session of the test's own until `release`. */
function holdAccountsLock(databaseUrl: string) {
  return holdTransaction(
    databaseUrl,
    (tx) => tx`select pg_advisory_xact_lock(hashtext(${ACCOUNTS_LOCK}))`,
  );
}

function deauthorizedWebhook(p: PaymentsSystem, account: string, id: string) {
  const payload = JSON.stringify({ id, type: "account.application.deauthorized", account });
  return signStripePayload(p.secrets().get("STRIPE_WEBHOOK_SECRET")!, payload).then((header) =>
    p.call("POST", "/v1/webhooks/stripe", {
      body: payload,
      headers: { "Content-Type": "application/json", "Stripe-Signature": header },
    })
  );
}

Deno.test("[payments] a link or unlink that cannot get the accounts lock in time: 503, nothing changed", async (t) => {
  // The wait leaves STRIPE_TIMEOUT_MS, the writes and the commit before the deadline: about
  // 800 ms here.
  await using p = await startPaymentsSystem({
    env: { REQUEST_TIMEOUT_MS: "2000", STRIPE_TIMEOUT_MS: "1000" },
  });
  const first = await linked(p);
  const other = await p.stripeEvent();
  await using lock = await holdAccountsLock(p.system.databaseUrl);
  const calls = p.stripe.calls.length;
  const webhookId = `evt_${crypto.randomUUID()}`;
  await t.step("DELETE, POST, PATCH and the webhook answer 503 within the deadline", async () => {
    const began = performance.now();
    const code = p.grant().code;
    const replies = await Promise.all([
      unlink(p, first.id),
      p.link(other.owner.token, other.event.id, p.grant().code),
      relink(p, first.id, code),
      deauthorizedWebhook(p, first.grant.accountId, webhookId),
    ]);
    for (const reply of replies) expectError(reply, 503);
    assert.ok(performance.now() - began < 1900, "answered before the gateway's timeout");
    assert.equal(p.stripe.calls.length, calls, "nothing reached Stripe: no code spent");
    assert.equal((await storedAccounts(p)).size, 1);
    assert.ok(p.stripe.connected.has(first.grant.accountId));
  });
  await t.step("once the lock is free, the same requests go through", async () => {
    await lock.release();
    expectStatus(await deauthorizedWebhook(p, first.grant.accountId, webhookId), 200);
    assert.equal((await storedAccounts(p)).size, 0, "the webhook's event was not recorded");
    const again = await linked(p);
    expectStatus(await unlink(p, again.id), 200);
    assert.ok(!p.stripe.connected.has(again.grant.accountId));
  });
});

Deno.test("[payments] a link racing its event's deletion leaves no account connected", async (t) => {
  await using p = await startPaymentsSystem();
  const deleteEvent = (eventId: string, token: string) =>
    p.call("DELETE", `/v1/events/${eventId}`, { token });

  await t.step("deleted while the link waits for Stripe: linked, then released", async () => {
    const cast = await p.stripeEvent();
    const grant = p.grant({ delayMs: 800 });
    const linking = p.link(cast.owner.token, cast.event.id, grant.code);
    await eventually(
      () => p.stripe.calls.some((call) => call.path === "/oauth/token"),
      5_000,
      "the exchange to reach Stripe",
    );
    expectStatus(await deleteEvent(cast.event.id, cast.owner.token), 200);
    expectStatus(await linking, 201, "the event was live when it was checked under the lock");
    // The deletion's fact waited for the lock, then found the row.
    await eventually(async () => (await storedAccounts(p)).size === 0, 5_000, "the row to go");
    await deauthorizeAsked(p, grant.accountId);
    await assertNoOrphan(p);
  });

  await t.step("deleted while the link waits for the lock: 422, Stripe not asked", async () => {
    const cast = await p.stripeEvent();
    const grant = p.grant();
    await using lock = await holdAccountsLock(p.system.databaseUrl);
    const linking = p.link(cast.owner.token, cast.event.id, grant.code);
    await eventually(async () => await lockWaiters(p) >= 1, 5_000, "the link to wait");
    expectStatus(await deleteEvent(cast.event.id, cast.owner.token), 200);

    await lock.release();
    expectError(await linking, 422, { pointer: "/data/relationships/event" });
    assert.ok(!p.stripe.connected.has(grant.accountId), "the code was not exchanged");
    assert.equal((await storedAccounts(p)).size, 0);
  });
});

Deno.test("[payments] a replaced account's release waits out a failing Stripe or a busy lock, then happens", async (t) => {
  await using p = await startPaymentsSystem();
  const { id, grant: first } = await linked(p);
  const pending = () => pendingReleases(p.sql);
  /** A relink to a new account while Stripe cannot deauthorize: the old one stays queued. */
  const relinkWhileStripeFails = async () => {
    p.stripe.failDeauthorize = true;
    expectStatus(await p.relink(p.system.admin.token, id, p.grant().code), 200);
    await p.payments.idle();
    p.stripe.failDeauthorize = false;
  };
  const due = () => p.sql`update stripe_account_releases set not_before = now()`;

  await t.step("Stripe failing: the release stays queued, then happens", async () => {
    await relinkWhileStripeFails();
    assert.equal(await pending(), 1);
    assert.ok(p.stripe.connected.has(first.accountId), "not released yet");
    await due();
    await releaseQueued(p.payments.context);
    assert.equal(await pending(), 0);
    assert.ok(!p.stripe.connected.has(first.accountId), "released on the next try");
  });
  await t.step("the accounts lock busy past the wait: postponed, then done", async () => {
    await relinkWhileStripeFails();
    await due();
    {
      await using _lock = await holdAccountsLock(p.system.databaseUrl);
      await releaseQueued(p.payments.context);
      const [row] = await p.sql`select attempts from stripe_account_releases`;
      assert.ok(row && row.attempts >= 2, "tried, and put off");
    }
    await due();
    await releaseQueued(p.payments.context);
    assert.equal(await pending(), 0);
    await assertNoOrphan(p);
  });
});

// A review (2026-12-06): a read-only database (a standby after a failover) answers the lock and
// the reads, so a link reached Stripe's exchange, which connected the account, before its first
// write failed; the release could not be queued either, and the account stayed connected.
Deno.test("[payments] a link on a read-only database is refused before Stripe connects anything", async () => {
  await using p = await startPaymentsSystem();
  const cast = await p.stripeEvent();
  await setDatabaseReadOnly(p.system.databaseUrl, true);
  try {
    const grants: FakeGrant[] = [];
    let reply: CallResult | undefined;
    await eventually(
      async () => {
        const grant = p.grant();
        grants.push(grant);
        reply = await p.link(cast.owner.token, cast.event.id, grant.code);
        return /takes no writes/.test(JSON.stringify(reply.body));
      },
      8_000,
      "a link refused as read-only",
    );
    expectStatus(reply!, 503);
    const exchanges = p.stripe.calls.filter((call) => call.path === "/oauth/token");
    assert.equal(exchanges.length, 0, "no code exchanged");
    assert.ok(grants.every((grant) => !p.stripe.connected.has(grant.accountId)));
  } finally {
    await setDatabaseReadOnly(p.system.databaseUrl, false);
  }
});
