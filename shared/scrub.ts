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

const urlCredentials = /([a-z][a-z0-9+.-]*:\/\/[^:@/\s]*:)[^@/\s]+@/gi;
/**
 * A name that holds a secret, with whatever it is prefixed or suffixed with (`access_token`,
 * `client_secret`, `PGPASSWORD`, `stripe_secret_key`): a word boundary before the bare names
 * missed every snake_case one (found by a review).
 */
const SECRET_NAME = String
  .raw`[\w.-]*?(?:pass(?:word|wd)?|secret|token|api[-_]?key|authorization)[\w-]*`;
/** `name=value`, `name: value`, `"name":"value"`, and a scheme before the value (`Bearer x`). */
const secretAssignment = new RegExp(
  String.raw`(?<![\w.-])(["']?${SECRET_NAME}["']?\s*[:=]\s*["']?)(?:(?:bearer|jwt|basic)\s+)?` +
    String.raw`[^\s&"',;]+`,
  "gi",
);

/** URL passwords and `password=...`-style assignments become "[redacted]". */
export function scrub(text: string): string {
  return text.replace(urlCredentials, "$1[redacted]@").replace(secretAssignment, "$1[redacted]");
}
