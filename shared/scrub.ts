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

/**
 * `scheme://user:password@`. A try starts only where a run of scheme characters starts (the
 * scheme is its first letter on): without that, each letter of a long run began a new scan to the
 * run's end, quadratic time (a 60 KB path held the gateway for 4 s in its access line).
 */
const urlCredentials = /(?<![a-z0-9+.-])([0-9+.-]*[a-z][a-z0-9+.-]*:\/\/[^:@/\s]*:)[^@/\s]+@/gi;
/** The words that name a secret. */
const SECRET_WORD = String.raw`(?:pass(?:word|wd)?|secret|token|api[-_]?key|auth[-_]?code)`;
/**
 * `name=value` where the name is a secret word, alone or after a prefix and a separator
 * (`access_token`, `client_secret`, `stripe.api-key`), maybe with a `key` after it
 * (`stripe_secret_key`). A word boundary before the bare words missed every snake_case name
 * (found by a review); a secret word inside another (`bypass`, `max_tokens`) is no secret.
 */
const secretAssignment = new RegExp(
  String.raw`(?<![\w.-])((?:[\w.-]*[_.-])?${SECRET_WORD}(?:[-_]key)?\s*=\s*["']?)[^\s&"',;]+`,
  "gi",
);
/** Environment-style names in capitals (`PGPASSWORD=`, `DATABASE_PASSWORD=`, `JWT_SECRET=`). */
const envAssignment =
  /(?<![\w.-])([A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN)\s*=\s*["']?)[^\s&"',;]+/g;
/** A JSON member (`"password":"..."`, `"authorization":"Bearer ..."`). */
const quotedMember = new RegExp(
  String.raw`("(?:(?:[\w.-]*[_.-])?${SECRET_WORD}(?:[-_]key)?|authorization)"\s*:\s*")[^"]*`,
  "gi",
);
/**
 * An Authorization header's credentials, after its scheme (`Authorization: Bearer x`): only with
 * a scheme, so "Invalid authorization: expected Bearer scheme" keeps its reason (a review).
 */
const authorizationHeader = /(\bauthorization\s*:\s*["']?(?:bearer|jwt|basic)\s+)[^\s"',;]+/gi;

/**
 * A JWT (or JWS) wherever it stands, named or not: a header and claims in base64url of a JSON
 * object (so both begin `eyJ`), then the signature, maybe empty. A token in a path (a client's
 * `/v1/activities/<token>`) reached the gateway's access line as it came (a review). The header
 * stops at a `-eyJ`, where the next try starts: else each `eyJ` of a long `eyJ-eyJ-…` began a
 * scan to the run's end, in quadratic time (a header holding `-eyJ` is redacted from there on).
 * That try's header may be `eyJ` alone: one ending in `-eyJ` was otherwise not redacted at all.
 */
const jwtLike = /\beyJ(?:\w|-(?!eyJ))*\.eyJ[\w-]+\.[\w-]*/g;

/** URL passwords, `password=...`-style assignments and JWTs become "[redacted]". */
export function scrub(text: string): string {
  return text.replace(jwtLike, "[redacted]")
    .replace(urlCredentials, "$1[redacted]@")
    .replace(secretAssignment, "$1[redacted]")
    .replace(envAssignment, "$1[redacted]")
    .replace(quotedMember, "$1[redacted]")
    .replace(authorizationHeader, "$1[redacted]");
}
