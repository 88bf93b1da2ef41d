/**
 * Services and the gateway as real subprocesses (`deno run -A <main.ts>`, as `deno task start`
 * runs them), for fault tests that kill processes or the servers under them. Every stderr line is
 * kept (`lines`), and those that are our JSON log lines parsed too (`logs`), so a test can wait
 * for and check what a process said. Disposing stops it: SIGTERM, then SIGKILL if it hangs.
 *
 * @example
 * ```ts ignore
 * await using audit = spawnProcess("audit", "services/audit/main.ts", env);
 * await audit.waitForLog((line) => line.message === "audit ready", 20_000);
 * await audit.kill("SIGKILL");
 * ```
 */
import { denoRunArgs, launchEnv, withInstanceId } from "../scripts/launch.ts";

export interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

export interface TestProcess extends AsyncDisposable {
  name: string;
  /** The process id (to change its limits: `prlimit --pid`). */
  pid: number;
  /** Every line the process wrote to stderr so far. */
  lines: string[];
  /** The lines of `lines` that are JSON log lines, parsed. */
  logs: LogLine[];
  /** Resolves once a stderr line contains `text`; rejects after `timeoutMs`. */
  waitForLine(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the first log line (already written or to come) that `match` accepts. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  /** Sends `signal` (SIGKILL by default) and resolves once the process has exited. */
  kill(signal?: Deno.Signal): Promise<void>;
  /** Resolves when the process has exited. */
  exited: Promise<Deno.CommandStatus>;
}

const root = new URL("../", import.meta.url);

function parseLogLine(text: string): LogLine | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    return JSON.parse(text) as LogLine;
  } catch {
    return undefined; // Not a log line (a panic trace, say): kept out of `logs`.
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    lines.forEach(onLine);
  }
}

/** Resolves with what `seen` finds, now or after a line to come; rejects after `timeoutMs`. */
function waitFor<T>(
  seen: () => T | undefined,
  waiters: Set<() => void>,
  timeoutMs: number,
  timedOut: () => Error,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = seen();
      if (found === undefined) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve(found);
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(timedOut());
    }, timeoutMs);
    waiters.add(check);
    check();
  });
}

/** Keeps every line of `stderr` and its parsed log lines; `waiters` run at each new line. */
function watchOutput(stderr: ReadableStream<Uint8Array>) {
  const lines: string[] = [];
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  const read = readLines(stderr, (line) => {
    lines.push(line);
    const log = parseLogLine(line);
    if (log) logs.push(log);
    waiters.forEach((check) => check());
  }).catch(() => {});
  return { lines, logs, waiters, read };
}

/**
 * Starts `deno run -A <script>` (with the flags `deno task start` gives it: scripts/launch.ts)
 * from the repository root with `env` over this process's own.
 */
export function spawnProcess(
  name: string,
  script: string,
  env: Record<string, string>,
): TestProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: denoRunArgs(script),
    cwd: root,
    env: {
      ...launchEnv(script),
      ...env,
      OTEL_RESOURCE_ATTRIBUTES: withInstanceId(
        env.OTEL_RESOURCE_ATTRIBUTES ?? Deno.env.get("OTEL_RESOURCE_ATTRIBUTES"),
      ),
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const { lines, logs, waiters, read } = watchOutput(child.stderr);
  const exited = child.status;
  const signal = (sent: Deno.Signal) => {
    try {
      child.kill(sent);
    } catch {
      // Already gone.
    }
  };
  const kill = async (sent: Deno.Signal = "SIGKILL") => {
    signal(sent);
    await exited;
    await read;
  };
  return {
    name,
    pid: child.pid,
    lines,
    logs,
    exited,
    kill,
    waitForLine: (text, timeoutMs = 60_000) =>
      waitFor(
        () => lines.some((line) => line.includes(text)) || undefined,
        waiters,
        timeoutMs,
        () => new Error(`${name} did not log "${text}": ${lines.slice(-5).join("\n")}`),
      ).then(() => {}),
    waitForLog: (match, timeoutMs) =>
      waitFor(
        () => logs.find(match),
        waiters,
        timeoutMs,
        () => new Error(`${name} did not log the line awaited within ${timeoutMs} ms`),
      ),
    // A clean stop first (the gateway removes its socket directory); SIGKILL if it hangs.
    async [Symbol.asyncDispose]() {
      const hung = setTimeout(() => signal("SIGKILL"), 5_000);
      await kill("SIGTERM");
      clearTimeout(hung);
    },
  };
}

/**
 * Whichever comes first: `process` logs `readyLine` ("running"), or it exits (its status): for tests
 * of a start that must fail with one line, or must not. Waits at most `timeoutMs` for the line.
 */
export async function readyOrExited(
  process: TestProcess,
  readyLine: string,
  timeoutMs = 30_000,
): Promise<"running" | Deno.CommandStatus> {
  const running = new Promise<"running">((resolve) => {
    process.waitForLine(readyLine, timeoutMs).then(() => resolve("running"), () => {});
  });
  return await Promise.race([process.exited, running]);
}
