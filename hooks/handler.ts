/**
 * Dredd hooks handler for Deno: Dredd runs it as `--language "deno run -A hooks/handler.ts"`,
 * appending the hook file paths, then connects over TCP and sends one JSON message per line
 * (`{uuid, event, data}`); every message is answered with the same uuid and event and the data
 * as the hooks left it.
 *
 * Usage: `deno run -A hooks/handler.ts [--port N] file1.ts file2.ts ...`. The port defaults to
 * `DREDD_HOOKS_PORT`, then 61321 (Dredd's default). Dredd does not pass the port it connects to:
 * with `--hooks-worker-handler-port N` give `--port N` inside `--language` too.
 *
 * @example
 * ```sh
 * deno run -A npm:dredd@14.1.0 blueprint/api.apib http://127.0.0.1:8080 \
 *   --language "deno run -A hooks/handler.ts" --hookfiles=hooks/catalog.ts
 * ```
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createLogger } from "@shared/log.ts";
import { type HookRegistry, hooks, isHookEvent } from "./hooks.ts";

/** Dredd's default `--hooks-worker-handler-port`. */
export const DEFAULT_PORT = 61321;
const HOST = "127.0.0.1";

const log = createLogger("hooks-handler");

export interface HandlerArgs {
  port: number;
  files: string[];
}

function parsePort(text: string | undefined, from: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`Cannot start the hooks handler: ${from} is not a port number`);
  }
  return port;
}

/**
 * Reads `--port N` / `--port=N` and the hook file paths; `DREDD_HOOKS_PORT` is the fallback port.
 *
 * @example
 * ```ts
 * parseArgs(["--port", "7000", "hooks/a.ts"], {}); // { port: 7000, files: ["hooks/a.ts"] }
 * ```
 */
export function parseArgs(
  args: readonly string[],
  env: { DREDD_HOOKS_PORT?: string },
): HandlerArgs {
  let port = env.DREDD_HOOKS_PORT ? parsePort(env.DREDD_HOOKS_PORT, "DREDD_HOOKS_PORT") : undefined;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--port") port = parsePort(args[++i], "--port");
    else if (arg.startsWith("--port=")) port = parsePort(arg.slice(7), "--port");
    else files.push(arg);
  }
  return { port: port ?? DEFAULT_PORT, files };
}

/** Imports each hook file in order, so its registrations land in the shared `hooks` registry. */
async function loadHookFiles(files: readonly string[], cwd: string): Promise<void> {
  for (const file of files) {
    const url = pathToFileURL(resolve(cwd, file)).href;
    try {
      await import(url);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`Cannot load hook file ${file}: ${reason}`);
    }
  }
}

interface Message {
  uuid: string;
  event: string;
  data: unknown;
}

function parseMessage(line: string): Message | undefined {
  try {
    const message = JSON.parse(line);
    if (message && typeof message === "object" && typeof message.uuid === "string") {
      return message as Message;
    }
  } catch {
    // Reported below: a line we cannot read gets no answer, and Dredd times that hook out.
  }
  log.error("Cannot read a message from Dredd: not a JSON object with a uuid", {
    length: line.length,
  });
  return undefined;
}

async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

async function answer(message: Message, registry: HookRegistry): Promise<Message> {
  if (!isHookEvent(message.event)) {
    log.warn("Unknown hooks event, answered unchanged", { event: message.event });
    return message;
  }
  const data = await registry.run(message.event, message.data);
  return { uuid: message.uuid, event: message.event, data };
}

/**
 * The text read so far and not yet ended by "\n", kept in parts. The `*All` messages carry every
 * transaction (50 MB here, with the 1 MB bodies of the too-large examples): appending to one
 * string and searching it again at every 64 KB chunk flattened it each time, so reading afterAll
 * took longer than Dredd's 10 s hook timeout. Only new text is searched, and only short texts are
 * tried as a whole object.
 */
class PendingText {
  #parts: string[] = [];
  #length = 0;

  /** Adds `text`; returns the lines it completes (without their "\n"). */
  add(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n", start)) {
      lines.push(this.#take(text.slice(start, end)));
      start = end + 1;
    }
    if (start < text.length) {
      this.#parts.push(start ? text.slice(start) : text);
      this.#length += text.length - start;
    }
    return lines;
  }

  /** The pending text when it already is one whole JSON object (then it is taken), else undefined. */
  completeObject(): string | undefined {
    if (!this.#length || this.#length > EARLY_REPLY_LIMIT) return undefined;
    const text = this.#parts.join("");
    if (!completeObject(text)) return undefined;
    this.#take("");
    return text.trim();
  }

  #take(last: string): string {
    const text = this.#parts.length ? this.#parts.join("") + last : last;
    this.#parts = [];
    this.#length = 0;
    return text;
  }
}

/** Longer messages wait for their "\n" (40 ms at most) rather than being parsed at every chunk. */
const EARLY_REPLY_LIMIT = 256 * 1024;

/**
 * Tells whether `text` (no newline seen yet) already holds one whole JSON object. A prefix of an
 * object's text never parses, so success means the message is complete.
 */
function completeObject(text: string): boolean {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{") || !trimmed.endsWith("}")) return false;
  try {
    JSON.parse(trimmed);
    return true;
  } catch {
    return false;
  }
}

/**
 * Serves one Dredd connection until Dredd closes it: messages are split on "\n" across TCP
 * chunks and answered strictly in order, each after its (possibly async) hooks finished.
 *
 * Dredd writes a message's JSON and its "\n" in two writes without TCP_NODELAY, so Nagle holds
 * the "\n" until our kernel's delayed ACK (40 ms on Linux) for every message. A complete JSON
 * object is therefore answered before its "\n" arrives, and our own "\n" is sent when Dredd's
 * comes: that carries the ACK at once, and Dredd only reads a reply once its "\n" is there.
 */
async function serveConnection(
  conn: Deno.TcpConn,
  registry: HookRegistry = hooks,
): Promise<void> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const pending = new PendingText();
  // True while a reply went out early and still owes its "\n".
  let owesNewline = false;

  async function send(text: string): Promise<void> {
    await writeAll(conn, encoder.encode(text));
  }

  async function reply(line: string, withNewline: boolean): Promise<void> {
    const message = parseMessage(line);
    if (!message) return;
    const answered = JSON.stringify(await answer(message, registry));
    const prefix = owesNewline ? "\n" : "";
    owesNewline = !withNewline;
    await send(prefix + answered + (withNewline ? "\n" : ""));
  }

  try {
    conn.setNoDelay(true);
    for await (const chunk of conn.readable) {
      // stream: true keeps a UTF-8 character split between chunks intact.
      for (const found of pending.add(decoder.decode(chunk, { stream: true }))) {
        const line = found.trim();
        if (line) await reply(line, true);
        else if (owesNewline) {
          owesNewline = false;
          await send("\n");
        }
      }
      const early = pending.completeObject();
      if (early !== undefined) await reply(early, false);
    }
    if (owesNewline) await send("\n");
  } catch (error) {
    // Dredd destroys the socket after afterAll; a reset then is the normal end.
    if (
      !(error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe)
    ) {
      throw error;
    }
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed by the readable stream ending.
    }
  }
}

async function main(): Promise<void> {
  const { port, files } = parseArgs(Deno.args, {
    DREDD_HOOKS_PORT: Deno.env.get("DREDD_HOOKS_PORT"),
  });
  // Dredd ends the handler with SIGTERM once it is done; that is a clean stop.
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  // Hooks load before listening, so a broken hook file stops the handler before Dredd connects.
  await loadHookFiles(files, Deno.cwd());
  const listener = Deno.listen({ hostname: HOST, port });
  console.log(`Deno hooks handler listening on ${HOST}:${port}`);
  const conn = await listener.accept();
  // Dredd uses exactly one connection; nobody else should get in after it.
  listener.close();
  await serveConnection(conn);
}

if (import.meta.main) {
  try {
    await main();
    Deno.exit(0);
  } catch (error) {
    log.error("Hooks handler stopped", { reason: error instanceof Error ? error.message : error });
    Deno.exit(1);
  }
}
