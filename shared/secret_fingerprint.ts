/**
 * Which `JWT_SECRET` a process holds, told without telling it: the catalog signs tokens and the
 * gateway verifies them, and with different secrets every login answered 200 and every signed-in
 * request 401 "the token is invalid or expired", logged as nothing more (an operator review,
 * 2026-12-06). The catalog's instances put this in their discovery answers, and the gateway's
 * `/health` names a catalog whose secret is not its own.
 *
 * An HMAC of a fixed text under the secret, shortened: it tells no more about the secret than any
 * token the catalog issues (an HMAC under it too), and it is never the same for two secrets but by
 * chance (one in 2^72).
 *
 * @example
 * ```ts
 * import { secretFingerprint } from "@shared/secret_fingerprint.ts";
 * const mine = secretFingerprint("a secret of 32 characters or more");
 * console.log(mine.length); // 12
 * ```
 */
import { createHmac } from "node:crypto";

const TEXT = "open-event: which JWT_SECRET signs";

export function secretFingerprint(secret: string): string {
  return createHmac("sha256", secret).update(TEXT).digest().subarray(0, 9).toString("base64url");
}

/** The discovery metadata key the catalog tells its fingerprint under. */
export const JWT_SECRET_METADATA = "jwt-secret";
