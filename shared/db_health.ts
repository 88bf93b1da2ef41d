/**
 * Whether a service's database answers, for `/health`: a service whose Postgres is gone still
 * answers discovery pings, so counting instances alone said "ok" while every request got 503. A
 * `select 1` must come back within PROBE_TIMEOUT_MS (a hung network answers nothing at all), on a
 * connection of its own: through the pool it waited behind slow requests (a table lock, a load
 * spike) and called a busy database unreachable, which would pull every instance out of a load
 * balancer at once. One probe a second at most per pool, however many gateways ask.
 *
 * @example
 * ```ts ignore
 * import { databaseProblem } from "@shared/db_health.ts";
 * const problem = await databaseProblem(sql); // undefined, or "database unreachable"
 * ```
 */
import { separateClient, type Sql } from "./db.ts";

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

/**
 * Whether a failed probe still heard the database: "too many connections" (53300) is Postgres
 * answering that it is full, while the pool's connections work; a probe that called that
 * unreachable would fail every instance's readiness at once.
 */
function busy(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "53300";
}

async function probe(sql: Sql): Promise<string | undefined> {
  // A pool opened elsewhere (a test's) is probed through itself.
  const client = separateClient(sql) ?? sql;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
  });
  try {
    const answered = await Promise.race([client`select 1`.then(() => true, busy), late]);
    return answered ? undefined : "database unreachable";
  } finally {
    clearTimeout(timer);
    // Closed at once, answered or not: probes never pile up behind a hung connection.
    if (client !== sql) client.end({ timeout: 0 }).catch(() => {});
  }
}
