/**
 * A private NATS server for tests: its own port and data folder (a temp dir, removed on dispose),
 * so a test may log in to it, stop it, start it again or freeze it without touching the shared
 * NATS on 4222.
 *
 * @example
 * ```ts ignore
 * await using nats = await startNatsServer({ jetStream: true });
 * const bus = await Bus.connect({ url: nats.url, prefix: "t" });
 * await nats.stop();   // like a crash: SIGKILL
 * await nats.start();  // back on its port, its JetStream store kept
 * ```
 */
import { freePort } from "@shared/net.ts";

export interface NatsServerOptions {
  /** Runs JetStream, its store in the data folder (kept across `stop` and `start`). */
  jetStream?: boolean;
  /** A login every client must give: a user and password, or a token. */
  login?: { user: string; password: string } | { token: string };
  /** The most subscriptions one connection may hold (`max_subscriptions`; no limit by default). */
  maxSubscriptions?: number;
  /** The most client connections it takes (`max_connections`; 64K by default). */
  maxConnections?: number;
  /**
   * Where JetStream keeps its store, instead of the data folder (a small disk of the test's own:
   * testing/small_disk.ts), and how much it may think it has there (`max_file_store`, bytes): more
   * than the disk holds lets the disk fill before JetStream's own limit refuses anything.
   */
  store?: { dir: string; maxFileStore: number };
  /** More configuration, as nats-server reads it (an `authorization` block of users, say). */
  config?: string;
}

export interface NatsServer extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>`, without the login. */
  url: string;
  port: number;
  /** Stops it the hard way (SIGKILL: connections cut, nothing said to clients): a crash. */
  stop(): Promise<void>;
  /**
   * Starts it again on its port and data folder and waits until it accepts connections; with
   * `login`, taking that one from now on instead (credentials rotated on the server).
   */
  start(options?: { login?: NatsServerOptions["login"] }): Promise<void>;
  /**
   * Freezes it (SIGSTOP) or thaws it (SIGCONT): a hung server, whose connections stay open but
   * answer nothing, unlike a stopped one's, which are reset at once.
   */
  freeze(frozen: boolean): void;
}

/**
 * The `server_name` in the INFO the server on `port` greets with, or undefined; fails after 1 s
 * without one. Unbounded, a port held by something that never speaks (an HTTP server, another
 * test's frozen nats-server) held the wait, and the test, for good (a review).
 */
async function serverNameOn(port: number): Promise<string | undefined> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const silent = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }, 1_000);
  try {
    const buffer = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) return undefined;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    const info = /^INFO\s+(\{.*\})/.exec(text);
    return info ? JSON.parse(info[1]).server_name : undefined;
  } finally {
    clearTimeout(silent);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

/**
 * Waits until the nats-server `process`, started with `-n name`, accepts connections on `port`;
 * fails early when it exited (a port another process took meanwhile, a bad flag) rather than
 * after the whole bound. The greeting must name `name`: ports are picked free and released before
 * the server binds them, so under `deno test --parallel` another test's nats-server could take one
 * first, answer for ours (which then exits), and the test would freeze or kill a server its
 * clients do not use (a relay stop test once "stopped after 15 ms" with JetStream frozen).
 */
export async function waitForNatsServer(
  process: Deno.ChildProcess,
  port: number,
  name: string,
): Promise<void> {
  let exited = false;
  process.status.then(() => exited = true);
  const deadline = Date.now() + 15_000;
  let other: string | undefined;
  while (Date.now() < deadline && !exited) {
    try {
      const answered = await serverNameOn(port);
      if (answered === name) return;
      other = answered;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const why = exited
    ? `it exited${other === undefined ? "" : ` (${other} answers on its port)`}`
    : `it did not answer as ${name} within 15 s`;
  throw new Error(`Cannot start nats-server on 127.0.0.1:${port}: ${why}`);
}

function loginArgs(login: NatsServerOptions["login"]): string[] {
  if (!login) return [];
  return "token" in login
    ? ["--auth", login.token]
    : ["--user", login.user, "--pass", login.password];
}

/** Starts one and waits until it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  for (let attempt = 1;; attempt++) {
    try {
      return await tryStartNatsServer(options);
    } catch (error) {
      // Its port taken meanwhile (see waitForNatsServer): again on another.
      if (attempt === 3) throw error;
    }
  }
}

async function tryStartNatsServer(options: NatsServerOptions): Promise<NatsServer> {
  const dir = await Deno.makeTempDir({ prefix: "oe-nats-" });
  const port = freePort();
  const name = `oe-test-${crypto.randomUUID().slice(0, 8)}`;
  const args = [
    ...["-a", "127.0.0.1", "-p", String(port), "-n", name],
    ...["-sd", options.store?.dir ?? dir, "-l", `${dir}/server.log`],
    ...(options.jetStream ? ["-js"] : []),
  ];
  let login = options.login;
  const config = [
    options.maxSubscriptions === undefined
      ? ""
      : `max_subscriptions: ${options.maxSubscriptions}\n`,
    options.maxConnections === undefined ? "" : `max_connections: ${options.maxConnections}\n`,
    options.store ? `jetstream { max_file_store: ${options.store.maxFileStore} }\n` : "",
    options.config ?? "",
  ].join("");
  if (config) {
    // Limits and the rest have no flags: a config file, which the flags above complete.
    await Deno.writeTextFile(`${dir}/server.conf`, config);
    args.push("-c", `${dir}/server.conf`);
  }
  let process: Deno.ChildProcess | undefined;
  const running = () => {
    if (!process) throw new Error(`Cannot signal nats-server on 127.0.0.1:${port}: it is stopped`);
    return process;
  };
  const stop = async () => {
    try {
      process?.kill("SIGKILL");
    } catch {
      // It exited by itself (a failed start): nothing to stop.
    }
    await process?.status;
    process = undefined;
  };
  const start = async (change: { login?: NatsServerOptions["login"] } = {}) => {
    if (process) throw new Error(`Cannot start nats-server on 127.0.0.1:${port}: it is running`);
    if (change.login) login = change.login;
    process = new Deno.Command("nats-server", {
      args: [...args, ...loginArgs(login)],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForNatsServer(process, port, name).catch(async (error) => {
      await stop();
      // Why it exited (the port taken meanwhile) is only in its log.
      const log = await Deno.readTextFile(`${dir}/server.log`).catch(() => "");
      const last = log.trim().split("\n").at(-1) || "empty";
      throw new Error(`${error.message} (its log: ${last})`, { cause: error });
    });
  };
  const dispose = async () => {
    await stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  await start().catch(async (error) => {
    await dispose();
    throw error;
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    start,
    freeze: (frozen) => running().kill(frozen ? "SIGSTOP" : "SIGCONT"),
    [Symbol.asyncDispose]: dispose,
  };
}
