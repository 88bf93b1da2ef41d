/**
 * A private PostgreSQL server for fault tests: its own data directory in a temp dir and its own
 * port, run as the `postgres` OS user (initdb refuses root), so a test may kill and restart it
 * without touching the shared server. Removed on dispose. A streaming-replication standby of one
 * (`startStandby`) is there for failover tests: promote it once the primary is killed.
 *
 * @example
 * ```ts ignore
 * await using pg = await startPostgresServer();
 * await pg.kill();   // like a crash: pg_ctl stop -m immediate
 * await pg.start();  // back, accepting connections
 * await using standby = await startStandby(pg);
 * await standby.promote(); // takes writes from now on
 * ```
 */
import { freePort } from "@shared/net.ts";

/** The newest PostgreSQL server installed from Debian's packages (CI may have another than 15). */
function serverBin(): string {
  const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
    .map((entry) => entry.name)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error("Cannot find a PostgreSQL server in /usr/lib/postgresql");
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

const BIN = serverBin();

export interface PostgresServer extends AsyncDisposable {
  /** `postgres://postgres@127.0.0.1:<port>/open_event` */
  url: string;
  port: number;
  /** Stops it the hard way (no shutdown checkpoint, connections cut): a crash. */
  kill(): Promise<void>;
  /** Starts it again and waits until it accepts connections. */
  start(): Promise<void>;
}

/** A hot standby streaming from a private server: it answers reads, refuses writes (25006). */
export interface PostgresStandby extends PostgresServer {
  /** Ends recovery (`pg_ctl promote -w`): back once it is a primary that takes writes. */
  promote(): Promise<void>;
}

async function asPostgres(args: string[]): Promise<void> {
  const { code, stderr, stdout } = await new Deno.Command("runuser", {
    args: ["-u", "postgres", "--", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    const text = new TextDecoder().decode(stderr) || new TextDecoder().decode(stdout);
    throw new Error(`Cannot run ${args[0]}: ${text}`);
  }
}

/** A temp dir the `postgres` user may write in: its data directory, log and socket go there. */
async function serverDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "oe-pg-" });
  await Deno.chmod(dir, 0o777);
  return dir;
}

/**
 * Runs the data directory `${dir}/data` on `port`, started here and waited for. Settings go on
 * the command line, not in postgresql.conf, so pg_basebackup's copy of it carries none of them.
 */
async function runServer(
  dir: string,
  port: number,
  settings: Record<string, string>,
): Promise<PostgresServer> {
  const data = `${dir}/data`;
  const extra = Object.entries(settings).map(([name, value]) => ` -c ${name}=${value}`).join("");
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off${extra}`;
  const start = () =>
    asPostgres([`${BIN}/pg_ctl`, "-D", data, "-l", `${dir}/log`, "-o", options, "-w", "start"]);
  const kill = () => asPostgres([`${BIN}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"]);
  try {
    await start();
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/open_event`,
    port,
    kill,
    start,
    async [Symbol.asyncDispose]() {
      await kill().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Starts one; `settings` are server settings beside ours (`{ max_connections: "8" }`). */
export async function startPostgresServer(
  settings: Record<string, string> = {},
): Promise<PostgresServer> {
  const dir = await serverDir();
  await asPostgres([
    `${BIN}/initdb`,
    "-D",
    `${dir}/data`,
    "-A",
    "trust",
    "-U",
    "postgres",
    "--no-sync",
  ]);
  return await runServer(dir, freePort(), settings);
}

/**
 * Starts a hot standby of `primary` (running) on a port of its own, once it accepts connections.
 * initdb's trust pg_hba lets 127.0.0.1 in for replication and Postgres 10+ defaults to
 * wal_level=replica, so the primary needs nothing more. `-R` writes standby.signal and
 * primary_conninfo; `-X stream` takes the WAL written during the copy. A primary started with a
 * larger max_connections (or similar) needs its `settings` here too: a hot standby refuses to
 * start below the primary's.
 */
export async function startStandby(
  primary: PostgresServer,
  settings: Record<string, string> = {},
): Promise<PostgresStandby> {
  const dir = await serverDir();
  try {
    await asPostgres([
      `${BIN}/pg_basebackup`,
      ...["-D", `${dir}/data`, "-h", "127.0.0.1", "-p", String(primary.port), "-U", "postgres"],
      ...["-R", "-X", "stream", "-c", "fast", "--no-sync"],
    ]);
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  const server = await runServer(dir, freePort(), settings);
  const promote = () => asPostgres([`${BIN}/pg_ctl`, "-D", `${dir}/data`, "-w", "promote"]);
  return Object.assign(server, { promote });
}
