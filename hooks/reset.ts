/**
 * The database side of the Dredd hooks: one connection to the catalog schema of the run's
 * database, and the reset that empties it before each transaction so every transaction starts
 * from the fixtures its own hook creates (ids start again at 1).
 *
 * @example
 * ```ts ignore
 * import { openFixtureDatabase, resetCatalog } from "./reset.ts";
 * const sql = openFixtureDatabase(Deno.env.get("DATABASE_URL")!);
 * await resetCatalog(sql);
 * await sql.end();
 * ```
 */
import postgres from "postgres";
import { Bus } from "@shared/bus.ts";
import { EVERY_TAG } from "@shared/cache_tags.ts";
import { announceTouched } from "@shared/cache_touched.ts";

export type Sql = postgres.Sql;

/** The catalog service's schema (services/catalog/service.ts `SCHEMA`). */
export const CATALOG_SCHEMA = "catalog";

/**
 * Kept across resets: the fixed roles the migration inserts, the migration ledger, and the
 * fact outbox (the relay's queue, not fixture data: emptying it under the relay would only drop
 * facts in flight).
 */
const KEEP = ["roles", "schema_migrations", "outbox"];

/** A setting the Dredd runner (scripts/dredd.ts) passes to the hooks; a missing one fails loudly. */
export function hookEnv(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`Cannot run the Dredd hooks: ${name} is not set`);
  return value;
}

let shared: Sql | undefined;

/** The run's fixture database, opened once and shared by every hook file. */
export function fixtureDatabase(): Sql {
  shared ??= openFixtureDatabase(hookEnv("DATABASE_URL"));
  return shared;
}

let bus: Promise<Bus> | undefined;

/** The run's bus (NATS_URL, BUS_PREFIX), connected once and shared by every hook file. */
function hooksBus(): Promise<Bus> {
  bus ??= Bus.connect({
    url: hookEnv("NATS_URL"),
    prefix: hookEnv("BUS_PREFIX"),
    name: "dredd-hooks",
  })
    .catch((error) => {
      bus = undefined;
      throw error;
    });
  return bus;
}

/**
 * Closes the shared fixture database and the hooks' bus connection (every hook file's afterAll
 * may call it).
 */
export async function closeFixtureDatabase(): Promise<void> {
  const sql = shared;
  shared = undefined;
  const connected = bus;
  bus = undefined;
  await Promise.all([sql?.end({ timeout: 5 }), connected?.then((b) => b.close(), () => {})]);
}

/** One connection is enough: hooks run one transaction at a time. */
export function openFixtureDatabase(url: string): Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: CATALOG_SCHEMA, application_name: "dredd-hooks" },
  });
}

let tables: Promise<string[]> | undefined;

async function catalogTables(sql: Sql): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`select tablename as name from pg_tables
    where schemaname = ${CATALOG_SCHEMA} and tablename <> all(${KEEP}) order by tablename`;
  if (!rows.length) throw new Error(`Cannot reset: schema ${CATALOG_SCHEMA} has no tables yet`);
  return rows.map((row) => row.name);
}

/** Empties every catalog table but the kept ones and restarts their ids at 1. */
export async function resetCatalog(sql: Sql): Promise<void> {
  // Listed once per run: migrations ran before Dredd started.
  tables ??= catalogTables(sql).catch((error) => {
    tables = undefined;
    throw error;
  });
  const names = (await tables).map((name) => `${CATALOG_SCHEMA}.${name}`);
  await sql`truncate table ${sql(names)} restart identity cascade`;
  await emptyCaches(await hooksBus(), `http://${hookEnv("HOST")}:${hookEnv("PORT")}`);
}

let probes = 0;

/**
 * Empties the gateway's response cache (and the services' access projections) after the rows
 * were replaced behind the services' backs: a reset publishes no fact, and ids start again at 1,
 * so `GET /v1/events/1` cached in one transaction would otherwise be served in the next, where
 * event 1 is another row. Returns once the gateway has handled the announcement.
 *
 * Core NATS is at most once and asynchronous, so a flush of our own connection alone proves
 * nothing about the gateway. What this relies on (one NATS server, as in the Dredd run):
 * 1. the flush's PONG comes after the server processed our PUB, and the server hands a PUB to
 *    every matching subscription's connection (queues it on that connection's one outbound
 *    stream) while processing it: the announcement is queued for the gateway before the PONG;
 * 2. the probe below is a cache miss (a key never asked before: checked by its `X-Cache`), so
 *    the gateway fetches it over its one bus connection, and the service's reply is queued on that
 *    connection after the announcement;
 * 3. nats.js runs a callback subscription's handler (the gateway's, gateway/cache_invalidation.ts)
 *    as it parses the message, in arrival order, before it parses later messages.
 * So by the time the probe is answered the gateway has emptied its cache. The services' access
 * projections hear the announcement by a callback subscription too (shared/access_facts.ts), and
 * by 1 it is queued on their connections before any request the transaction makes the gateway
 * send them: they have emptied theirs before they handle it.
 */
export async function emptyCaches(bus: Bus, gatewayUrl: string): Promise<void> {
  announceTouched(bus, [EVERY_TAG]);
  await bus.nc.flush();
  // A cacheable anonymous read under a key no one asked for before (the gateway keys the query).
  const probe = `${gatewayUrl}/v1/event-topics?dredd-reset=${Date.now()}-${++probes}`;
  const response = await fetch(probe);
  await response.body?.cancel();
  const seen = response.headers.get("X-Cache");
  if (response.status !== 200 || seen !== "MISS") {
    throw new Error(
      `Cannot tell whether the gateway emptied its cache: ${probe} answered ${response.status} with X-Cache ${seen}`,
    );
  }
}
