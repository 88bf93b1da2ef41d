/**
 * The start and stop of a service process: a start-up failure becomes one clear log line and
 * exit code 1 (operators see "Cannot connect to NATS", not a stack trace), and SIGINT/SIGTERM
 * run the shutdown once (drain, finish in-flight work) before exiting 0.
 *
 * @example
 * ```ts ignore
 * const bus = await startOrExit(log, "connect to NATS", () => Bus.connect({ url, prefix }));
 * onShutdown(log, async () => { await bus.close(); });
 * ```
 */
import { Bus, type RunningService } from "./bus.ts";
import { type Config, serviceDatabaseUrl } from "./config.ts";
import { openDatabase, type Sql } from "./db.ts";
import { createLogger, flushLogs, type Logger } from "./log.ts";

export async function startOrExit<T>(
  log: Logger,
  step: string,
  start: () => Promise<T>,
): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    log.error(`Cannot ${step}: ${reason}`);
    Deno.exit(1);
  }
}

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
  const sql = await startOrExit(log, "open the database", async () => {
    const sql = await openDatabase(serviceDatabaseUrl(process.name), {
      schema: process.schema,
      log,
    });
    const applied = await process.migrate(sql);
    if (applied.length) log.info("migrations applied", { applied });
    return sql;
  });
  const bus = await startOrExit(
    log,
    "connect to NATS",
    () =>
      Bus.connect({
        url: config.natsUrl,
        prefix: config.busPrefix,
        factsReplicas: config.factsReplicas,
        name: process.name,
        logger: log,
      }),
  );
  const service = await startOrExit(log, `start ${process.name}`, async () => {
    const service = await process.start({ sql, bus, config, log });
    await process.ready?.(service, { sql, config, log });
    return service;
  });
  log.info(`${process.name} ready`, { instance: service.running.id });
  onShutdown(log, async () => {
    await service.stop();
    await bus.close();
    await sql.end({ timeout: 5 });
  });
  return service;
}
