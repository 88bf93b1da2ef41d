/**
 * One-line JSON logs on stderr, with `trace_id` and `span_id` when tracing is on (see
 * telemetry.ts). Callers pass fields, never whole request bodies: secrets (passwords, tokens,
 * keys) must not reach a log line, and `redact` drops the field names that usually hold them in
 * case one slips through.
 *
 * @example
 * ```ts
 * import { createLogger } from "@shared/log.ts";
 * const log = createLogger("catalog", "info");
 * log.info("service started", { instances: 1 });
 * ```
 */
import { scrub } from "./scrub.ts";
import { activeIds, tracing } from "./telemetry.ts";

export { scrub };

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const secretKey = /pass(word)?|secret|token|authorization|api[-_]?key|auth[-_]?code/i;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/**
 * How often a recurring line is said: at most once per `everyMs`, per kind when lines of several
 * kinds share one pace, so that a flood of one event says so once in a while, not once each time.
 * In elapsed time: until 2026-12-06 nine places wrote this out, most by the wall clock, which set
 * back an hour silenced their lines for that hour.
 *
 * @example
 * ```ts
 * import { LinePace } from "@shared/log.ts";
 * const pace = new LinePace(60_000);
 * if (pace.due()) console.warn("too busy: refusing requests");
 * ```
 */
export class LinePace {
  readonly everyMs: number;
  readonly #saidAt = new Map<string, number>();

  constructor(everyMs: number) {
    this.everyMs = everyMs;
  }

  /** Whether a line of `kind` may be said now; if so, it counts as said. */
  due(kind = ""): boolean {
    const now = performance.now();
    const last = this.#saidAt.get(kind);
    if (last !== undefined && now - last < this.everyMs) return false;
    // Kinds may vary without end (a refusal names its subject): the map must not grow for good.
    if (this.#saidAt.size >= MAX_PACED_KINDS) this.#saidAt.clear();
    this.#saidAt.set(kind, now);
    return true;
  }
}

/** Kinds a `LinePace` remembers at most (past it, it starts over: a line said again early). */
const MAX_PACED_KINDS = 100;

/** Replaces the values of secret-looking keys, at any depth, with "[redacted]". */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return scrub(value);
  if (depth > 5 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = secretKey.test(key) ? "[redacted]" : redact(item, depth + 1);
  }
  return out;
}

const encoder = new TextEncoder();
const pending: string[] = [];
let flushTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * Writes the buffered lines now. Info and debug lines are buffered for a few milliseconds (one
 * write per burst instead of one per request, which showed in the gateway's profile); warnings
 * and errors flush at once, and so does process exit.
 */
export function flushLogs(): void {
  clearTimeout(flushTimer);
  flushTimer = undefined;
  if (!pending.length) return;
  let bytes = encoder.encode(pending.join("\n") + "\n");
  pending.length = 0;
  try {
    while (bytes.length) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
  } catch (error) {
    // Nobody reads stderr any more (the start that piped it died): the lines have nowhere to
    // go, and throwing here would end a shutdown that is still draining.
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

function emit(line: string, urgent: boolean): void {
  pending.push(line);
  if (urgent || pending.length >= 512) return flushLogs();
  if (flushTimer === undefined) {
    flushTimer = setTimeout(flushLogs, 25);
    // A pending flush must not keep a process (or a test) alive; exit flushes anyway.
    Deno.unrefTimer(flushTimer as unknown as number);
  }
}

globalThis.addEventListener("unload", flushLogs);

/** Name and message of an error; its stack only at debug level (operators turn it on). */
function describeError(error: unknown, withStack: boolean): unknown {
  if (!(error instanceof Error)) return scrub(String(error));
  const described: Record<string, unknown> = { name: error.name, message: scrub(error.message) };
  if (withStack && error.stack) described.stack = scrub(error.stack);
  return described;
}

export function createLogger(component: string, level: LogLevel = "info"): Logger {
  const write = (at: LogLevel, message: string, fields?: LogFields) => {
    if (rank[at] < rank[level]) return;
    const entry: LogFields = {
      time: new Date().toISOString(),
      level: at,
      component,
      message: scrub(message),
    };
    // With tracing on, a line names the span it was written in, to find it among the traces.
    if (tracing) Object.assign(entry, activeIds());
    if (fields) {
      for (const [key, value] of Object.entries(redact(fields) as LogFields)) {
        if (key !== "error") entry[key] = value;
        // No error is no field, not `"error":"undefined"`.
        else if (fields.error !== undefined) {
          entry.error = describeError(fields.error, level === "debug");
        }
      }
    }
    emit(JSON.stringify(entry), rank[at] >= rank.warn);
  };
  return {
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}
