/**
 * One-line JSON logs on stderr. Callers pass fields, never whole request bodies: secrets
 * (passwords, tokens, keys) must not reach a log line, and `redact` drops the field names that
 * usually hold them in case one slips through.
 *
 * @example
 * ```ts
 * import { createLogger } from "@shared/log.ts";
 * const log = createLogger("catalog", "info");
 * log.info("service started", { instances: 1 });
 * ```
 */

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

/** Replaces the values of secret-looking keys, at any depth, with "[redacted]". */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 5 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = secretKey.test(key) ? "[redacted]" : redact(item, depth + 1);
  }
  return out;
}

function describeError(error: unknown): unknown {
  if (!(error instanceof Error)) return String(error);
  return { name: error.name, message: error.message, stack: error.stack };
}

export function createLogger(component: string, level: LogLevel = "info"): Logger {
  const write = (at: LogLevel, message: string, fields?: LogFields) => {
    if (rank[at] < rank[level]) return;
    const entry: LogFields = { time: new Date().toISOString(), level: at, component, message };
    if (fields) {
      for (const [key, value] of Object.entries(redact(fields) as LogFields)) {
        entry[key] = key === "error" ? describeError(fields.error) : value;
      }
    }
    console.error(JSON.stringify(entry));
  };
  return {
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}
