/**
 * A private PostgreSQL server for fault tests: its own data directory in a temp dir and its own
 * port, run as the `postgres` OS user (initdb refuses root), so a test may kill and restart it
 * without touching the shared server. Removed on dispose.
 *
 * @example
 * ```ts ignore
 * await using pg = await startPostgresServer();
 * await pg.kill();   // like a crash: pg_ctl stop -m immediate
 * await pg.start();  // back, accepting connections
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

/** Starts one; `settings` are server settings beside ours (`{ max_connections: "8" }`). */
export async function startPostgresServer(
  settings: Record<string, string> = {},
): Promise<PostgresServer> {
  const dir = await Deno.makeTempDir({ prefix: "oe-pg-" });
  await Deno.chmod(dir, 0o777);
  const data = `${dir}/data`;
  const port = freePort();
  await asPostgres([`${BIN}/initdb`, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const extra = Object.entries(settings).map(([name, value]) => ` -c ${name}=${value}`).join("");
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off${extra}`;
  const start = () =>
    asPostgres([`${BIN}/pg_ctl`, "-D", data, "-l", `${dir}/log`, "-o", options, "-w", "start"]);
  const kill = () => asPostgres([`${BIN}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"]);
  await start();
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
