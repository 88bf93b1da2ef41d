/**
 * Real service processes for fault tests: `deno run -A <main.ts>` with the environment given,
 * their JSON log lines on stderr kept for assertions, stopped (SIGTERM, then SIGKILL) on dispose.
 *
 * @example
 * ```ts ignore
 * await using audit = startProcess("audit", "services/audit/main.ts", env);
 * await audit.waitForLog((line) => line.message === "audit ready", 20_000);
 * ```
 */

export interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

export interface TestProcess extends AsyncDisposable {
  name: string;
  /** Every JSON log line written so far. */
  logs: LogLine[];
  /** Resolves with the first log line (already written or to come) that `match` accepts. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  kill(signal?: Deno.Signal): Promise<void>;
}

const root = new URL("../", import.meta.url);

async function collectLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    lines.forEach(onLine);
  }
}

export function startProcess(
  name: string,
  main: string,
  env: Record<string, string>,
): TestProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main],
    cwd: root.pathname,
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logs: LogLine[] = [];
  const waiters = new Set<(line: LogLine) => void>();
  const read = collectLines(child.stderr, (text) => {
    try {
      const line = JSON.parse(text) as LogLine;
      logs.push(line);
      for (const waiter of waiters) waiter(line);
    } catch {
      // Not a log line (a panic trace, say): kept out of `logs`.
    }
  }).catch(() => {});
  let alive = true;
  const kill = async (signal: Deno.Signal = "SIGKILL") => {
    if (!alive) return;
    alive = false;
    child.kill(signal);
    await child.status;
    await read;
  };
  return {
    name,
    logs,
    waitForLog(match, timeoutMs) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${name} did not log the line awaited within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (line: LogLine) => {
          if (!match(line)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(line);
        };
        waiters.add(waiter);
      });
    },
    kill,
    // A clean stop first (the gateway removes its socket directory); SIGKILL if it hangs.
    [Symbol.asyncDispose]: async () => {
      const hung = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // It exited meanwhile.
        }
      }, 5_000);
      await kill("SIGTERM");
      clearTimeout(hung);
    },
  };
}
