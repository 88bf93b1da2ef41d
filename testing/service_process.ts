/**
 * Services and the gateway as real subprocesses (as `deno task start` runs them), for fault
 * tests that kill processes or the servers under them. Each process's log lines are kept, so a
 * test can check what it said.
 *
 * @example
 * ```ts ignore
 * await using catalog = await spawnProcess("catalog", "services/catalog/main.ts", env);
 * catalog.kill("SIGKILL");
 * ```
 */

const root = new URL("../", import.meta.url);

export interface ServiceProcess extends AsyncDisposable {
  name: string;
  /** Every line the process wrote to stderr (our JSON logs) so far. */
  lines: string[];
  /** Resolves once a log line contains `text`; rejects after `timeoutMs`. */
  waitForLine(text: string, timeoutMs?: number): Promise<void>;
  kill(signal: Deno.Signal): void;
  /** Resolves when the process has exited. */
  exited: Promise<Deno.CommandStatus>;
}

async function collect(stream: ReadableStream<Uint8Array>, lines: string[], onLine: () => void) {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    lines.push(...parts);
    onLine();
  }
}

export function spawnProcess(
  name: string,
  script: string,
  env: Record<string, string>,
): ServiceProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", script],
    cwd: root,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const collected = collect(child.stderr, lines, () => waiters.forEach((check) => check()));
  const exited = child.status;
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  };
  return {
    name,
    lines,
    exited,
    kill,
    waitForLine(text, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name} did not log "${text}": ${lines.slice(-5).join("\n")}`));
        }, timeoutMs);
        const check = () => {
          if (!lines.some((line) => line.includes(text))) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      });
    },
    async [Symbol.asyncDispose]() {
      kill("SIGTERM");
      const killer = setTimeout(() => kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
      await collected.catch(() => {});
    },
  };
}
