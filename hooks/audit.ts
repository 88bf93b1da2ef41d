/**
 * Dredd hooks for blueprint/audit.apib. Before each transaction the catalog tables and the
 * activity log are emptied (ids restart at 1); then the fixtures the blueprint names are
 * inserted with SQL: users 1 (admin) and 2 (no admin rights) and activities 1-4. The plan says
 * who calls; the hook puts that user's token into `Authorization`.
 *
 * Needs `DATABASE_URL` (the run's database, which the audit service shares) and `JWT_SECRET`.
 */
import { withGeneratedExamples } from "./error_examples.ts";
import { hooks, type Transaction } from "./hooks.ts";
import { createUser, tokenFor } from "./factories.ts";
import { closeFixtureDatabase, fixtureDatabase, hookEnv, resetCatalog, type Sql } from "./reset.ts";
import { ACTIVITY_COLUMNS, type NewActivity } from "../services/audit/store/activities.ts";

/** The audit service's schema (services/audit/service.ts `SCHEMA`). */
const AUDIT_SCHEMA = "audit";

type Who = "admin" | "user" | "anonymous";

const USER_IDS: Record<Exclude<Who, "anonymous">, string> = { admin: "1", user: "2" };

/** One entry per transaction name Dredd prints (`dredd blueprint/audit.apib ... --names`). */
const plans: Record<string, Who> = {
  "Activities > Activities > List activities > Example 1": "admin",
  "Activities > Activities > List activities > Example 2": "user",
  "Activities > Activities > List activities > Example 3": "anonymous",
  "Activities > Activities > Search activities": "admin",
  "Activities > Activities > Search activities by an unknown field": "admin",
  "Activities > Activity > Get an activity > Example 1": "admin",
  "Activities > Activity > Get an activity > Example 2": "user",
};

/** The plans above, extended to the generated error examples (hooks/error_examples.ts). */
const allPlans = withGeneratedExamples(plans, "blueprint/audit.apib");

/** The blueprint's activities 1-4, oldest first. */
const ACTIVITIES = [
  [
    "system",
    null,
    "2030-03-01T09:00:00Z",
    'User "admin@example.com" (1) created',
    "user",
    "created",
    "1",
  ],
  [
    "admin@example.com (1)",
    "1",
    "2030-03-01T09:05:00Z",
    "Event topic 1 created",
    "event-topic",
    "created",
    "1",
  ],
  [
    "paul@example.com (2)",
    "2",
    "2030-03-01T09:10:00Z",
    'User "paul@example.com" (2) login',
    "user",
    "logged-in",
    "2",
  ],
  [
    "admin@example.com (1)",
    "1",
    "2030-03-01T09:20:00Z",
    "Discount code SUMMER created for event 3",
    "discount-code",
    "created",
    "7",
  ],
] as const;

const env = hookEnv;
const db = fixtureDatabase;

/**
 * Empties the log and the addresses audit learnt (user ids restart with the catalog's: an
 * earlier transaction's user 2 must not name this one's); the audit service may still be
 * writing facts of earlier transactions.
 */
async function resetAudit(sql: Sql): Promise<void> {
  await sql`truncate table ${sql(`${AUDIT_SCHEMA}.activities`)},
    ${sql(`${AUDIT_SCHEMA}.user_emails`)} restart identity`;
}

/** Inserts activities 1-4 and returns their ids (1-4 unless a live fact slipped in between). */
async function insertActivities(sql: Sql): Promise<string[]> {
  const ids: string[] = [];
  for (const [actor, actorId, time, action, type, verb, resourceId] of ACTIVITIES) {
    const row: NewActivity = {
      fact_id: crypto.randomUUID(),
      actor,
      actor_id: actorId,
      occurred_at: time,
      action,
      service: type === "discount-code" ? "discounts" : "catalog",
      type,
      verb,
      resource_type: type,
      resource_id: resourceId,
    };
    // One row at a time, in order: the transactions expect ids 1-4.
    const [{ id }] = await sql`insert into ${sql(`${AUDIT_SCHEMA}.activities`)} ${
      sql(row, ...ACTIVITY_COLUMNS)
    } returning id`;
    ids.push(String(id));
  }
  return ids;
}

async function prepare(transaction: Transaction, who: Who): Promise<void> {
  const sql = db();
  await resetCatalog(sql);
  await resetAudit(sql);
  await createUser(sql, {
    email: "admin@example.com",
    firstName: "Ada",
    lastName: "Admin",
    isAdmin: true,
    isSuperAdmin: true,
  });
  await createUser(sql, { email: "paul@example.com", firstName: "Paul", lastName: "Park" });
  const ids = await insertActivities(sql);
  // The blueprint asks for activity 4; follow it if its id moved.
  transaction.request.uri = transaction.request.uri.replace(
    /^\/v1\/activities\/4$/,
    `/v1/activities/${ids[3]}`,
  );
  if (who === "anonymous") {
    delete transaction.request.headers.Authorization;
  } else {
    const token = await tokenFor(USER_IDS[who], env("JWT_SECRET"));
    transaction.request.headers.Authorization = `JWT ${token}`;
  }
}

for (const [name, who] of Object.entries(allPlans)) {
  hooks.before(name, (transaction) => prepare(transaction, who));
}

hooks.afterAll(async () => {
  await closeFixtureDatabase();
});
