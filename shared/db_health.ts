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
import { refusedWritesLately } from "./db_watch.ts";

const PROBE_TIMEOUT_MS = 500;
const PROBE_EVERY_MS = 1_000;

const probes = new WeakMap<Sql, { at: number; problem: Promise<string | undefined> }>();

/**
 * What keeps `sql` from serving ("database unreachable", "database full" when Postgres refuses
 * new connections and the pool has none that works, or "database read-only"), or undefined when
 * it answers and takes writes.
 */
export function databaseProblem(sql: Sql): Promise<string | undefined> {
  const now = Date.now();
  const last = probes.get(sql);
  if (last && now - last.at < PROBE_EVERY_MS) return last.problem;
  const problem = probe(sql);
  probes.set(sql, { at: now, problem });
  return problem;
}

/** Whether Postgres refused a connection for being full ("too many connections", 53300). */
function full(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "53300";
}

/**
 * What one `select 1` on a connection of its own says. A database that is full (53300) answered:
 * then the pool decides, since its connections may still work (a probe that called that
 * unreachable failed every instance's readiness at once), or may be gone too.
 */
async function ask(sql: Sql, client: Sql): Promise<string | undefined> {
  try {
    const problem = await readOnlyProblem(client);
    // The pool's sessions may still be read-only where a new one is not (or the other way).
    return problem ?? (refusedWritesLately(sql) ? "database read-only" : undefined);
  } catch (error) {
    if (client === sql || !full(error)) return "database unreachable";
  }
  try {
    return await readOnlyProblem(sql);
  } catch {
    return "database full";
  }
}

/**
 * The probe's one statement: "database read-only" when the session takes no writes (a standby
 * reached after a failover, a database set read-only: reads work, every write is a 503), else
 * nothing. Until 2026-12-06 it was a `select 1`, and such a service looked healthy.
 */
async function readOnlyProblem(client: Sql): Promise<string | undefined> {
  const [{ readOnly }] = await client<{ readOnly: string }[]>`
    select current_setting('transaction_read_only') as "readOnly"`;
  return readOnly === "on" ? "database read-only" : undefined;
}

async function probe(sql: Sql): Promise<string | undefined> {
  // A pool opened elsewhere (a test's) is probed through itself.
  const client = separateClient(sql) ?? sql;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("database unreachable"), PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([ask(sql, client), late]);
  } finally {
    clearTimeout(timer);
    // Closed at once, answered or not: probes never pile up behind a hung connection.
    if (client !== sql) client.end({ timeout: 0 }).catch(() => {});
  }
}
