/**
 * Secrets out of free text: error messages quote URLs and settings, and they reach log lines
 * (shared/log.ts) and span statuses (shared/telemetry.ts). One module of its own, so both can use
 * it without importing each other.
 *
 * @example
 * ```ts
 * import { scrub } from "@shared/scrub.ts";
 * console.log(scrub("postgres://app:hunter2@db/x")); // "postgres://app:[redacted]@db/x"
 * ```
 */

const urlCredentials = /([a-z][a-z0-9+.-]*:\/\/[^:@/\s]+:)[^@/\s]+@/gi;
const secretAssignment = /\b(pass(?:word)?|secret|token|api[-_]?key)=[^\s&"',;]+/gi;

/** URL passwords and `password=...`-style assignments become "[redacted]". */
export function scrub(text: string): string {
  return text.replace(urlCredentials, "$1[redacted]@").replace(secretAssignment, "$1=[redacted]");
}
