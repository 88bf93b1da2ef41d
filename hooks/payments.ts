/**
 * Dredd hooks for blueprint/payments.apib. A local fake Stripe (services/payments/fake_stripe.ts)
 * listens where `STRIPE_CONNECT_URL` points the payments service (scripts/dredd.ts picks the
 * port), so even the Stripe POST runs, never against the internet.
 *
 * Before each transaction the catalog and payments tables are emptied (ids restart at 1), then:
 * users 1 (admin), 2 (owner of event 1), 3 (co-organizer of event 1), 4 (no role); event 1
 * `abcdef01`, published, accepting Stripe; and, when the plan says so, Stripe authorization 1 of
 * event 1 (sealed with the run's PAYMENTS_ENCRYPTION_KEY, its account connected at the fake, with
 * the digest of the code it was linked with when the plan names one).
 * The blueprint's codes are granted at the fake; the webhook body is signed with the run's
 * STRIPE_WEBHOOK_SECRET. The plan says who calls; the hook puts that user's token in.
 *
 * Needs `DATABASE_URL`, `JWT_SECRET`, `STRIPE_CONNECT_URL`, `STRIPE_SECRET_KEY`,
 * `STRIPE_CLIENT_ID`, `STRIPE_WEBHOOK_SECRET`, `PAYMENTS_ENCRYPTION_KEY`.
 */
import { createSecretBox } from "../services/payments/crypto.ts";
import { type FakeStripe, startFakeStripe } from "../services/payments/fake_stripe.ts";
import { codeDigest, sealTokens } from "../services/payments/handlers/accounts.ts";
import { SCHEMA as PAYMENTS_SCHEMA } from "../services/payments/service.ts";
import { signStripePayload } from "../services/payments/webhook_signature.ts";
import { createCast, tokenFor } from "./factories.ts";
import { withGeneratedExamples } from "./error_examples.ts";
import { hooks, type Transaction } from "./hooks.ts";
import { closeFixtureDatabase, fixtureDatabase, hookEnv, resetCatalog, type Sql } from "./reset.ts";

type Who = "admin" | "owner" | "coorganizer" | "outsider" | "anonymous";

const USER_IDS: Record<Exclude<Who, "anonymous">, string> = {
  admin: "1",
  owner: "2",
  coorganizer: "3",
  outsider: "4",
};

interface Plan {
  as: Who;
  /** Authorization 1 of event 1 exists (account `acct_dredd_fixture`). */
  linked?: boolean;
  /** The code authorization 1 was linked with (its `code_digest`); none: linked before digests. */
  linkedCode?: string;
  /** Codes the fake Stripe grants for this transaction. */
  codes?: string[];
  /** Sign the request body with the webhook secret. */
  sign?: boolean;
}

const FIXTURE_ACCOUNT = "acct_dredd_fixture";

/** One entry per transaction name Dredd prints (`deno task dredd --names`). */
const plans: Record<string, Plan> = {
  "Stripe Authorizations > Stripe authorizations > Link a Stripe account > Example 1": {
    as: "owner",
    codes: ["ac_dredd_owner"],
  },
  "Stripe Authorizations > Stripe authorizations > Link a Stripe account > Example 2": {
    as: "admin",
    codes: ["ac_dredd_admin"],
  },
  "Stripe Authorizations > Stripe authorizations > Link a Stripe account > Example 3": {
    as: "coorganizer",
    codes: ["ac_dredd_coorganizer"],
  },
  // "ac_dredd_unknown" is never granted: Stripe refuses it.
  "Stripe Authorizations > Stripe authorizations > Link a Stripe account > Example 4": {
    as: "owner",
  },
  "Stripe Authorizations > Stripe authorizations > Link a Stripe account > Example 5": {
    as: "owner",
    linked: true,
    codes: ["ac_dredd_second"],
  },
  "Stripe Authorizations > Stripe authorization > Get a Stripe authorization > Example 1": {
    as: "owner",
    linked: true,
  },
  "Stripe Authorizations > Stripe authorization > Get a Stripe authorization > Example 2": {
    as: "admin",
    linked: true,
  },
  "Stripe Authorizations > Stripe authorization > Get a Stripe authorization > Example 3": {
    as: "coorganizer",
    linked: true,
  },
  "Stripe Authorizations > Stripe authorization > Re-link a Stripe account > Example 1": {
    as: "owner",
    linked: true,
    codes: ["ac_dredd_relink"],
  },
  "Stripe Authorizations > Stripe authorization > Re-link a Stripe account > Example 2": {
    as: "outsider",
    linked: true,
    codes: ["ac_dredd_relink"],
  },
  // The code the fixture was linked with, sent again: never granted, so an exchange would be 422.
  "Stripe Authorizations > Stripe authorization > Re-link a Stripe account > Example 3": {
    as: "owner",
    linked: true,
    linkedCode: "ac_dredd_linked",
  },
  "Stripe Authorizations > Stripe authorization > Unlink a Stripe account > Example 1": {
    as: "owner",
    linked: true,
  },
  "Stripe Authorizations > Stripe authorization > Unlink a Stripe account > Example 2": {
    as: "coorganizer",
    linked: true,
  },
  "Stripe Authorizations > Event of a Stripe authorization > Get the event of a Stripe authorization":
    { as: "owner", linked: true },
  "Stripe Authorizations > Event relationship of a Stripe authorization > Get the event linkage of a Stripe authorization":
    { as: "admin", linked: true },
  "Stripe Authorizations > Stripe authorization of an event > Get the Stripe authorization of an event > Example 1":
    { as: "owner", linked: true },
  "Stripe Authorizations > Stripe authorization of an event > Get the Stripe authorization of an event > Example 2":
    { as: "owner" },
  "Stripe Authorizations > Stripe authorization of an event > Get the Stripe authorization of an event > Example 3":
    { as: "anonymous", linked: true },
  "Stripe Authorizations > Stripe authorization relationship of an event > Get the Stripe authorization linkage of an event":
    { as: "admin", linked: true },
  "Webhooks > Stripe webhooks > Receive a Stripe event > Example 1": {
    as: "anonymous",
    linked: true,
    sign: true,
  },
  "Webhooks > Stripe webhooks > Receive a Stripe event > Example 2": {
    as: "anonymous",
    linked: true,
  },
};

/** The plans above, extended to the generated error examples (hooks/error_examples.ts). */
const allPlans = withGeneratedExamples(plans, "blueprint/payments.apib");

const env = hookEnv;
const db = fixtureDatabase;

let stripe: FakeStripe | undefined;

/** The fake listens on the port of STRIPE_CONNECT_URL, where payments already points. */
async function fakeStripe(): Promise<FakeStripe> {
  stripe ??= await startFakeStripe({
    secretKey: env("STRIPE_SECRET_KEY"),
    clientId: env("STRIPE_CLIENT_ID"),
    port: Number(new URL(env("STRIPE_CONNECT_URL")).port),
  });
  return stripe;
}

async function resetPayments(sql: Sql): Promise<void> {
  await sql`truncate table ${
    sql([`${PAYMENTS_SCHEMA}.stripe_authorizations`, `${PAYMENTS_SCHEMA}.stripe_webhook_events`])
  } restart identity`;
}

async function build(sql: Sql, plan: Plan): Promise<void> {
  const { event } = await createCast(sql);
  await sql`update events set can_pay_by_stripe = true where id = ${event}`;
  if (plan.linked) {
    const box = await createSecretBox(env("PAYMENTS_ENCRYPTION_KEY"));
    const sealed = await sealTokens(box, event, {
      accessToken: "sk_test_dredd_fixture",
      refreshToken: "rt_dredd_fixture",
      accountId: FIXTURE_ACCOUNT,
      publishableKey: "pk_test_dredd_fixture",
      scope: "read_write",
      livemode: false,
    });
    const digest = plan.linkedCode ? await codeDigest(box, event, plan.linkedCode) : null;
    const row = { event_id: event, ...sealed, code_digest: digest };
    await sql`insert into ${sql(`${PAYMENTS_SCHEMA}.stripe_authorizations`)} ${
      sql(
        row,
        "event_id",
        "stripe_publishable_key",
        "access_token",
        "refresh_token",
        "stripe_user_id",
        "account_lookup",
        "scope",
        "livemode",
        "code_digest",
      )
    }`;
    await sql`update events set is_stripe_linked = true where id = ${event}`;
    (await fakeStripe()).connected.add(FIXTURE_ACCOUNT);
  }
}

async function prepare(transaction: Transaction, plan: Plan): Promise<void> {
  const sql = db();
  await resetCatalog(sql);
  await resetPayments(sql);
  await build(sql, plan);
  const fake = await fakeStripe();
  for (const code of plan.codes ?? []) fake.grant({ code });
  if (plan.sign) {
    transaction.request.headers["Stripe-Signature"] = await signStripePayload(
      env("STRIPE_WEBHOOK_SECRET"),
      transaction.request.body,
    );
  }
  if (plan.as === "anonymous") {
    delete transaction.request.headers.Authorization;
  } else {
    const token = await tokenFor(USER_IDS[plan.as], env("JWT_SECRET"));
    transaction.request.headers.Authorization = `JWT ${token}`;
  }
}

function fromThisBlueprint(transaction: Transaction): boolean {
  const file = (transaction.origin as { filename?: string } | undefined)?.filename;
  return !!file && file.endsWith("payments.apib");
}

hooks.beforeEach((transaction) => {
  if (fromThisBlueprint(transaction) && !allPlans[transaction.name]) {
    transaction.fail = `Cannot prepare "${transaction.name}": hooks/payments.ts has no plan for it`;
  }
});

for (const [name, plan] of Object.entries(allPlans)) {
  hooks.before(name, (transaction) => prepare(transaction, plan));
}

hooks.afterAll(async () => {
  await stripe?.stop();
  stripe = undefined;
  await closeFixtureDatabase();
});
