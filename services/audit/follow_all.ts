/**
 * From facts to activities: one row per fact, a whole batch in one insert, in one transaction with
 * the users' addresses it learnt (user_emails.ts). A fact the database refuses (a value out of its
 * range) is handed back as rejected, so the consumer parks it instead of redelivering its batch
 * forever; any other failure (the database is away) fails the batch, which JetStream then
 * redelivers.
 */
import type { Bus } from "@shared/bus.ts";
import { consumeFacts, type FactConsumer, type HandleResult } from "@shared/consumer.ts";
import { keptPositions } from "@shared/fact_kept_position.ts";
import type { Sql } from "@shared/db.ts";
import { databaseProblem } from "@shared/db_health.ts";
import { type Fact, factActor, factResource } from "@shared/facts.ts";
import { parseFactType } from "@shared/fact_names.ts";
import { isFactType } from "@shared/fact_catalog.ts";
import { facts as factSubjects } from "@shared/subjects.ts";
import type { Logger } from "@shared/log.ts";
import { clean, describeActor, describeFact, type KnownUsers } from "./actions.ts";
import { insertActivities, type NewActivity } from "./store/activities.ts";
import { saveUserEmails, type UserEmailRow } from "./store/user_emails.ts";
import { UserEmails } from "./user_emails.ts";

/**
 * The activity of a fact: `type` and `verb` are the resource type and verb of the fact type;
 * `users` is what audit knows of the users it names (by default nobody).
 */
function toActivity(fact: Fact, users?: KnownUsers): NewActivity {
  const { service, resource, verb } = parseFactType(fact.type)!;
  const actor = factActor(fact);
  return {
    fact_id: fact.id,
    actor: describeActor(fact, users),
    actor_id: actor ? clean(actor.id, 200) : null,
    occurred_at: fact.time,
    action: describeFact(fact, users),
    service: clean(service, 100),
    type: clean(resource, 100),
    verb: clean(verb, 100),
    resource_type: clean(resource, 100),
    resource_id: clean(factResource(fact).id, 200),
  };
}

/** A fact's activity and the address it taught audit, if any: written together. */
interface Described {
  activity: NewActivity;
  user?: UserEmailRow;
}

/** Writes activities and the addresses learnt with them, in one transaction. */
async function write(sql: Sql, activities: NewActivity[], users: UserEmailRow[]): Promise<number> {
  if (!users.length) return await insertActivities(sql, activities);
  return await sql.begin(async (tx) => {
    const inserted = await insertActivities(tx, activities);
    await saveUserEmails(tx, users);
    return inserted;
  });
}

/** Postgres refused the values themselves (classes 22 and 23): retrying cannot help. */
function refusedValue(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && /^2[23]/.test(code);
}

/**
 * Whether a fact is a later version of a type audit knows (`catalog.event.updated.v2` beside
 * `catalog.event.updated`): by the README's rule for a payload change, the old type is published
 * beside it for the same change until its subscribers moved, and audit, which knows the old one,
 * writes the change's activity from that. A version of a type it knows in no form is a change of
 * its own. Once the old type leaves the registry, its newer version is recorded.
 */
function twinOfKnownType(type: string): boolean {
  const parsed = parseFactType(type);
  if (!parsed?.version) return false;
  const base = `${parsed.service}.${parsed.resource}.${parsed.verb}`;
  const version = Number(parsed.version.slice(1));
  if (isFactType(base)) return true;
  for (let older = 1; older < version; older++) {
    if (isFactType(`${base}.v${older}`)) return true;
  }
  return false;
}

/**
 * Writes the activities of a batch; facts already written are skipped (idempotent on the fact
 * id), and so are later versions of a type audit knows (`twinOfKnownType`: one change, one
 * activity); facts the database refuses come back in `reject`.
 */
export async function applyAllFacts(
  sql: Sql,
  batch: Fact[],
  log: Logger,
): Promise<HandleResult & { inserted: number }> {
  const facts = batch.filter((fact) => !twinOfKnownType(fact.type));
  const reject: { id: string; reason: string }[] = [];
  const described = new Map<string, Described>();
  // In order: a user's fact counts for the facts behind it (a grant after the sign-up).
  const users = await UserEmails.before(sql, facts);
  for (const fact of facts) {
    // One fact that cannot be described must not hold back the batch (redelivered for good).
    try {
      // The same fact twice in one batch (re-published with another message id) is written once.
      const activity = toActivity(fact, users);
      described.set(fact.id, { activity, user: users.learn(fact) });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      reject.push({ id: fact.id, reason: `cannot describe it (${why})` });
    }
  }
  const rows = [...described.values()];
  try {
    return { inserted: await write(sql, rows.map((row) => row.activity), users.learnt()), reject };
  } catch (error) {
    if (!refusedValue(error)) throw error;
    log.warn("a batch was refused; writing its facts one by one", { count: rows.length });
  }
  let inserted = 0;
  for (const { activity, user } of rows) {
    try {
      inserted += await write(sql, [activity], user ? [user] : []);
    } catch (error) {
      if (!refusedValue(error)) throw error;
      const code = (error as { code: string }).code;
      reject.push({ id: activity.fact_id, reason: `the database refused it (${code})` });
    }
  }
  return { inserted, reject };
}

/** One durable consumer shared by every audit instance: each fact goes to one of them. */
export const DURABLE = "audit";

/** Starts following every service's facts into activities. */
export function followAllFacts(options: {
  sql: Sql;
  bus: Bus;
  log: Logger;
  /** Facts per batch (default 1000: one insert each, well under Postgres' parameter limit). */
  batchSize?: number;
}): Promise<FactConsumer> {
  const { sql, bus, log } = options;
  return consumeFacts(bus, {
    durable: DURABLE,
    subject: factSubjects.all,
    batchSize: options.batchSize ?? 1000,
    // Every change becomes an activity, of types audit does not know yet too (described
    // generically): a producer may be deployed before audit.
    unknownTypes: true,
    log,
    // A failure while the database is away is retried, never parked (shared/consumer.ts).
    dependencyProblem: () => databaseProblem(sql),
    // A restored log gets what it lacks again (shared/fact_kept_position.ts).
    keptIn: keptPositions(sql, log),
    handle: async (batch) => {
      const { inserted, reject } = await applyAllFacts(sql, batch, log);
      log.debug("facts recorded", { count: batch.length, inserted });
      return { reject };
    },
  });
}
