/**
 * Whether a service's database answers, for `/health`: a service whose Postgres is gone still
 * answers discovery pings, so counting instances alone said "ok" while every request got 503. A
 * `select 1` must come back within PROBE_TIMEOUT_MS (a hung network answers nothing at all); one
 * probe a second at most per pool, however many gateways ask.
 *
 * @example
 * ```ts ignore
 * import { databaseProblem } from "@shared/db_health.ts";
 * const problem = await databaseProblem(sql); // undefined, or "database unreachable"
 * ```
 */
import type { Sql } from "./db.ts";

const PROBE_TIMEOUT_MS = 500;
const PROBE_EVERY_MS = 1_000;

const probes = new WeakMap<Sql, { at: number; problem: Promise<string | undefined> }>();

/** What keeps `sql` from serving ("database unreachable"), or undefined when it answers. */
export function databaseProblem(sql: Sql): Promise<string | undefined> {
  const now = Date.now();
  const last = probes.get(sql);
  if (last && now - last.at < PROBE_EVERY_MS) return last.problem;
  const problem = probe(sql);
  probes.set(sql, { at: now, problem });
  return problem;
}

async function probe(sql: Sql): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
  });
  try {
    const answered = await Promise.race([sql`select 1`.then(() => true, () => false), late]);
    return answered ? undefined : "database unreachable";
  } finally {
    clearTimeout(timer);
  }
}
