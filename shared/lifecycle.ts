/**
 * The start and stop of a service process: a start-up failure becomes one plain line on stderr
 * naming the cause and the fix, and exit code 1 (operators see "Cannot connect to NATS at ...:
 * nothing answers there. Start NATS there or set NATS_URL.", not a stack trace), and
 * SIGINT/SIGTERM run the shutdown once (drain, finish in-flight work) before exiting 0; so does
 * the end of stdin in a process `deno task start` started (`STOP_AT_STDIN_END`).
 *
 * @example
 * ```ts ignore
 * const bus = await startOrExit(log, "connect to NATS", () => Bus.connect({ url, prefix }));
 * onShutdown(log, async () => { await bus.close(); });
 * ```
 */
import { hostsOf, isPostgresUrl } from "./postgres_url.ts";
import { Bus, type RunningService } from "./bus.ts";
import { EVERY_TAG } from "./cache_tags.ts";
import { announceTouched } from "./cache_touched.ts";
import { type Config, databaseSetting, serviceDatabaseUrl } from "./config.ts";
// db.ts (and postgres.js with it) is imported when a service starts, in runService: the gateway
// uses this module too and opens no database (postgres.js is ~3.6 MiB of its resident memory).
import type { Sql } from "./db.ts";
import { createLogger, flushLogs, type Logger, scrub } from "./log.ts";
import { isLookupFailure } from "./net.ts";

/** The setting that points at what each start-up step needs, so the fix can name it. */
const settingOf: Record<string, string> = {
  "open the database": "DATABASE_URL",
  "connect to NATS": "NATS_URL",
};

/** A failure a user can fix: what went wrong, and what to do about it (given the setting). */
interface KnownCause {
  cause: string;
  fix: (setting: string) => string;
}

/** The cause of a failure a user can cause, in words; undefined for anything else (a bug). */
function knownCause(error: unknown): KnownCause | undefined {
  const { code, name, message } = (error ?? {}) as {
    code?: string;
    name?: string;
    message?: string;
  };
  const text = String(message ?? error);
  return connectionCause(code, name, text) ?? serverOrUrlCause(error, { code, name }, text);
}

/** Why a connection failed: nothing there, no route, a refused login, silence, a hang-up. */
function connectionCause(
  code: string | undefined,
  name: string | undefined,
  text: string,
): KnownCause | undefined {
  if (code === "ECONNREFUSED" || /connection refused|ECONNREFUSED/i.test(text)) {
    return { cause: "nothing answers there", fix: (s) => `Start it, or set ${s} to one that does` };
  }
  if (code === "28P01" || code === "28000" || name === "AuthorizationError") {
    return {
      cause: `it refused the login (${text})`,
      fix: (s) => `Put a user and password it accepts in ${s}`,
    };
  }
  // A host no route leads to (a wrong address, a firewall answering so): until 2026-12-06 the
  // bare "connect EHOSTUNREACH 192.0.2.77:5432" named no setting (an operator review).
  if (
    code === "EHOSTUNREACH" || code === "ENETUNREACH" ||
    /EHOSTUNREACH|ENETUNREACH|no route to host|network is unreachable/i.test(text)
  ) {
    return {
      cause: "no route leads there from this machine",
      fix: (s) => `Check the host in ${s}, and the network to it`,
    };
  }
  if (code === "ENOTFOUND" || /lookup address|ENOTFOUND/i.test(text)) {
    return { cause: "its host name does not resolve", fix: (s) => `Correct the host in ${s}` };
  }
  // A server that never answers, or one of another kind that waits for its own protocol:
  // postgres.js gives up at its connect_timeout, nats.js says "timeout".
  if (code === "CONNECT_TIMEOUT" || /^timeout$/i.test(text)) {
    return {
      cause: "nothing there answered in time (a server that is silent, or of another kind)",
      fix: (s) => `Check the host and port in ${s}`,
    };
  }
  // A server of another kind (HTTP, NATS's port), or a proxy whose database is away (a sidecar),
  // ends each connection: until 2026-12-05 postgres.js tried again at once, for good, without a
  // word (vendor/postgres/README.md).
  if (code === "EPIPE" || code === "CONNECTION_CLOSED" || /ended by the other party/i.test(text)) {
    return {
      cause: "it closed the connection without answering",
      fix: (s) => `Check the host and port in ${s}, and that the server behind it runs`,
    };
  }
  return undefined;
}

/**
 * A server without TLS where the URL asks for it: NATS's `tls://` (shared/nats_transport.ts), and
 * Postgres's `sslmode=require`, where postgres.js starts the handshake after the server said no
 * and the socket closes under it (until 2026-12-06 the bare "Client network socket disconnected
 * before secure TLS connection was established", naming no setting: an operator review).
 */
function tlsCause(error: unknown, name: string | undefined, text: string): KnownCause | undefined {
  if (name === "TlsNotOfferedError") {
    return {
      cause: (error as { reason: string }).reason,
      fix: (s) => `Turn TLS on in that server, or set ${s} to one that offers it`,
    };
  }
  if (/disconnected before secure TLS connection was established/i.test(text)) {
    return {
      cause: "it closed the connection where TLS was to begin (a server without TLS?)",
      fix: (s) => `Turn TLS on in that server, or drop sslmode=require (or ssl=true) from ${s}`,
    };
  }
  return undefined;
}

/**
 * What a server that answered refused or lacks (a right, room for a connection, TLS, JetStream),
 * or what is wrong with its URL.
 */
function serverOrUrlCause(
  error: unknown,
  { code, name }: { code?: string; name?: string },
  text: string,
): KnownCause | undefined {
  // A database user without a right the start needs (to create the database, or its schema):
  // until 2026-12-06 the bare "permission denied to create database" (an operator review).
  if (code === "42501") {
    return {
      cause: `its user lacks a right (${text})`,
      fix: (s) => `Grant it, or create what it names first, or put a user that has it in ${s}`,
    };
  }
  // A NATS server that greets and refuses (shared/nats_transport.ts `refusalOf`): at its
  // max_connections the start line said that nothing answered there (a resource review).
  const refusal = /the server refused it: (.+)$/.exec(text)?.[1];
  if (refusal !== undefined) {
    return {
      cause: `it refused the connection (${refusal})`,
      fix: (s) =>
        /maximum connections/i.test(refusal)
          ? `Raise its max_connections, or set ${s} to a server with room`
          : `Check that server's log, or set ${s} to another`,
    };
  }
  const tls = tlsCause(error, name, text);
  if (tls) return tls;
  // A service's NATS without JetStream (Debian's nats-server unit starts one so): said as
  // "Cannot start catalog: jetstream is not enabled", naming neither the server nor the setting.
  if (name === "JetStreamNotEnabled") {
    return {
      cause: "JetStream is not enabled there",
      fix: (s) => `Start nats-server with -js, or set ${s} to one that has JetStream`,
    };
  }
  if (name === "TypeError" && /Invalid URL/i.test(text)) {
    return { cause: "the URL is malformed", fix: (s) => `Correct ${s}` };
  }
  // postgres.js decodes the user and password: a bare `%` in one ("URI malformed", naming no
  // setting until 2026-12-06, an operator review).
  if (name === "URIError") {
    return {
      cause: "the URL is malformed (a % in its user or password not written %25?)",
      fix: (s) => `Correct ${s}`,
    };
  }
  return undefined;
}

/**
 * Where a step went, without its login: `host:port` of the URL, when there is one (every host of
 * a Postgres URL; the first server of a NATS_URL list). A Postgres password holding a `,` once
 * ended up here: the list was cut at its first comma, inside the login.
 */
export function atHost(url: string | undefined): string {
  if (!url) return "";
  try {
    if (isPostgresUrl(url)) return ` at ${hostsOf(url).join(",")}`;
    return ` at ${new URL(url.split(",")[0]).host}`;
  } catch {
    return "";
  }
}

/** What a start-up step reaches: its URL, and the setting that gave it (default by step). */
export interface StartTarget {
  url?: string;
  /** `PAYMENTS_DATABASE_URL` where that, not `DATABASE_URL`, named the database. */
  setting?: string;
}

/**
 * One line for a failed start-up step: the cause and the fix when the failure is one a user can
 * cause (nothing answers, login refused, a malformed URL), else the error's own message.
 */
export function describeStartFailure(
  step: string,
  error: unknown,
  target: StartTarget = {},
): string {
  const { url } = target;
  const setting = target.setting ?? settingOf[step];
  if (url === "embedded") {
    return `Cannot ${step}: ${setting}=embedded works only with \`deno task start\`, ` +
      "which runs that server; give this process the URL of a running one.";
  }
  const known = knownCause(error);
  if (known && setting) {
    return `Cannot ${step}${atHost(url)}: ${known.cause}. ${known.fix(setting)}.`;
  }
  const reason = error instanceof Error ? error.message : String(error);
  return `Cannot ${step}: ${reason}`;
}

/** Ends the process after a failure the user can fix: one plain line, no stack, exit code 1. */
export function exitWithError(line: string): never {
  flushLogs();
  console.error(scrub(line));
  Deno.exit(1);
}

export async function startOrExit<T>(
  _log: Logger,
  step: string,
  start: () => Promise<T>,
  target?: StartTarget,
): Promise<T> {
  try {
    return await start();
  } catch (error) {
    exitWithError(`${processName()}: ${describeStartFailure(step, error, target)}`);
  }
}

/** The process's name for its one error line: `services/<name>/main.ts` or `gateway`. */
function processName(): string {
  const parts = new URL(Deno.mainModule).pathname.split("/");
  return parts.at(-1) === "main.ts" ? parts.at(-2) ?? "start" : parts.at(-1) ?? "start";
}

/**
 * Failures a user causes that surface as thrown errors before any handler runs: a setting
 * `loadConfig` refuses ("Cannot read PORT: ..."), an address `listenAt` cannot listen on. Every
 * process entry point imports this module, so they all end with one line instead of a stack
 * trace; any other uncaught error is a bug and keeps its stack.
 */
export function userCausedLine(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== "Error") return undefined;
  const setting = error.message.match(/^Cannot read ([A-Z_]+):/)?.[1];
  if (setting) return `${error.message}. Correct ${setting}, or unset it for its default.`;
  if (error.message.startsWith("Cannot ")) return error.message;
  return undefined;
}

/** Where a listener listens, and the settings that give its host and its port. */
export interface ListenTarget {
  hostname: string;
  port: number;
  hostSetting: string;
  portSetting: string;
}

/**
 * Runs `listen` (Deno.listen, Deno.serve, ...) and fails naming the setting to change: when the
 * host does not resolve or is no host name (the bare errors left a stack trace), when the address
 * is in use, and when it is not one of this machine's (a generic line told an operator whose
 * METRICS_ADDR was at fault to set PORT or HOST, found following the README, 2026-12-04).
 */
export async function listenAt<T>(
  target: ListenTarget,
  listen: () => T | Promise<T>,
): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    const { hostname, port, hostSetting, portSetting } = target;
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `Cannot listen on ${hostname}:${port}: it is in use. ` +
          `Stop what uses it, or set ${portSetting} to a free port.`,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new Error(
        `Cannot listen on ${hostname}:${port}: ${error.message}. ` +
          `Set ${hostSetting} to an address of this machine.`,
      );
    }
    // Deno.listen refuses a name it cannot look up at all (`0.0.0.0 ` with a space from an env
    // file) with a URIError, which left a stack trace naming no setting (an operator review).
    if (error instanceof URIError) {
      throw new Error(`Cannot read ${hostSetting}: "${hostname}" is not a host name or address`);
    }
    if (!isLookupFailure(error)) throw error;
    throw new Error(
      `Cannot read ${hostSetting}: "${hostname}" does not resolve to an address here`,
    );
  }
}

globalThis.addEventListener("unhandledrejection", (event) => {
  const line = userCausedLine(event.reason);
  if (!line) return;
  event.preventDefault();
  exitWithError(`${processName()}: ${line}`);
});
globalThis.addEventListener("error", (event) => {
  const line = userCausedLine(event.error);
  if (!line) return;
  event.preventDefault();
  exitWithError(`${processName()}: ${line}`);
});

/**
 * Set by `deno task start` on the processes it starts, whose stdin it holds open while it lives:
 * the end of stdin means start is gone (even SIGKILLed) and the process stops as on SIGTERM. A
 * process run by hand, without it, ignores its stdin (a terminal, or /dev/null under a manager).
 */
export const STOP_AT_STDIN_END = "OE_STOP_AT_STDIN_END";

/** Runs `stop` once stdin ends, when the process was started by `deno task start`. */
function stopAtStdinEnd(stop: () => void): void {
  if (Deno.env.get(STOP_AT_STDIN_END) !== "1") return;
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) {
        // Nothing is ever sent; only the end matters.
      }
    } catch {
      // A broken stdin ends it too.
    }
    stop();
  })();
}

/** Drains and exits 0 on SIGINT/SIGTERM (or at the end of stdin: STOP_AT_STDIN_END). */
export function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    try {
      await stop();
    } catch (error) {
      log.error("shutdown failed", { error });
      Deno.exit(1);
    }
    log.info("stopped");
    flushLogs();
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  }
  stopAtStdinEnd(() => void shutdown("end of stdin (the start that ran this process is gone)"));
}

/**
 * Tells every gateway to empty its cache (and every service its kept access answers): an instance
 * that starts, or stops, may render pages otherwise than the instances whose pages are kept (another
 * build, other settings). Once when it is ready, and once when it no longer answers, so that a swap
 * that overlaps the old instance and the new one ends with neither's pages kept. A rolling-upgrade
 * review saw the old build's pages served for up to CACHE_TTL_MS after a replacement.
 */
function dropEveryCachedPage(bus: Bus): void {
  announceTouched(bus, [EVERY_TAG]);
}

/** What a service process needs to start: its name, schema, migrations and start function. */
export interface ServiceProcess<S extends { stop(): Promise<void>; running: RunningService }> {
  name: string;
  schema: string;
  migrate(sql: Sql): Promise<string[]>;
  start(context: { sql: Sql; bus: Bus; config: Config; log: Logger }): Promise<S>;
  /** Runs after the service answers (for example the first admin). */
  ready?(service: S, context: { sql: Sql; config: Config; log: Logger }): Promise<void>;
}

/**
 * A service process's database: opened, its schema migrated and claimed for this system
 * (shared/system_mark.ts), or the process ends with one line saying why.
 */
async function openOwnSchema(
  config: Config,
  process: Pick<ServiceProcess<never>, "name" | "schema" | "migrate">,
  log: Logger,
): Promise<Sql> {
  const databaseUrl = serviceDatabaseUrl(process.name, config);
  const { openDatabase } = await import("./db.ts");
  const { claimSchema } = await import("./system_mark.ts");
  return await startOrExit(log, "open the database", async () => {
    const sql = await openDatabase(databaseUrl, {
      schema: process.schema,
      max: config.databasePoolMax,
      log,
    });
    const applied = await process.migrate(sql);
    if (applied.length) log.info("migrations applied", { applied });
    await claimSchema(sql, process.schema, config.busPrefix);
    return sql;
  }, { url: databaseUrl, setting: databaseSetting(process.name, config) });
}

/**
 * The whole life of a service process, the same for every service: read the config, open and
 * migrate its schema, connect to NATS, start, and drain on SIGINT/SIGTERM.
 *
 * @example
 * ```ts ignore
 * await runService(loadConfig(), { name: "audit", schema: "audit", migrate: migrateAudit,
 *   start: ({ sql, bus, log }) => startAudit({ sql, bus, log }) });
 * ```
 */
export async function runService<S extends { stop(): Promise<void>; running: RunningService }>(
  config: Config,
  process: ServiceProcess<S>,
  log: Logger = createLogger(process.name, config.logLevel),
): Promise<S> {
  const { watchPool } = await import("./db_metrics.ts");
  // Imported here, as db.ts is: the gateway, which uses this module too, needs no JetStream.
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const sql = await openOwnSchema(config, process, log);
  const bus = await startOrExit(
    log,
    "connect to NATS",
    async () => {
      const bus = await Bus.connect({
        url: config.natsUrl,
        prefix: config.busPrefix,
        factsReplicas: config.factsReplicas,
        serveConcurrency: config.serveConcurrency,
        name: process.name,
        logger: log,
      });
      // Every service keeps facts on JetStream, on a second connection: asked here, its absence
      // (or that connection refused) is named with NATS_URL.
      try {
        await jetstreamManager(await bus.jetStreamConnection(), { timeout: 2000 });
      } catch (error) {
        await bus.close();
        throw error;
      }
      return bus;
    },
    { url: config.natsUrl },
  );
  const service = await startOrExit(log, `start ${process.name}`, async () => {
    const service = await process.start({ sql, bus, config, log });
    await process.ready?.(service, { sql, config, log });
    return service;
  });
  await startOrExit(log, "subscribe on NATS", () => bus.confirmSubscriptions());
  log.info(`${process.name} ready`, { instance: service.running.id });
  dropEveryCachedPage(bus);
  const unwatchPool = watchPool(sql);
  onShutdown(log, async () => {
    unwatchPool();
    await service.stop();
    dropEveryCachedPage(bus);
    await bus.close();
    await sql.end({ timeout: 5 });
  });
  return service;
}
