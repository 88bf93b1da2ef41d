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
import { flushLogs, type Logger } from "./log.ts";

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
