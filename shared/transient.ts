/**
 * Whether a failure is the world's rather than the work's: a dependency that cannot be reached,
 * is busy or did not answer in time, or a deployment that is not what the code expects. Trying the same work again later can succeed, so a fact
 * consumer (shared/consumer.ts) keeps retrying it however long that lasts, and parks a fact only
 * when it fails otherwise. An error not recognised here is not transient; the consumer then
 * asks the service's own check of its dependencies (its `dependencyProblem` option) before it
 * counts the failure against the fact. The cost of each mistake: a failure wrongly called
 * transient stalls its consumer (seen in its lag and its logs), one wrongly called permanent
 * parks a fact that was fine (kept in the parked stream, for an operator to publish again).
 *
 * @example
 * ```ts
 * import { isTransientFailure } from "@shared/transient.ts";
 * import { ServiceUnavailableError } from "@shared/errors.ts";
 * isTransientFailure(new ServiceUnavailableError("Cannot reach the database")); // true
 * isTransientFailure(new TypeError("Cannot read properties of undefined")); // false
 * ```
 */
import { errors as natsErrors } from "@nats-io/nats-core";
import { isDatabaseOutage } from "./db_watch.ts";
import { ApiError } from "./errors.ts";

/**
 * Postgres codes of work that lost a race or waited too long, not of wrong work: serialization
 * failure, deadlock, lock not available (lock timeout), statement timeout (a busy database).
 * Class 53 (insufficient resources: disk full, out of memory, too many connections) heals too.
 * So does 25006, a write refused as read-only: after a failover a pool may still reach the old
 * primary, now a standby (a DNS name or virtual IP that moved late), whose `select 1` answers, so
 * the services' dependency check (shared/db_health.ts) calls it healthy; as a fact's own failure
 * every fact was parked as poison, one after another, until the pool found the new primary.
 * 25P03, a transaction idle past its limit, is the payments follower's accounts lock outwaited
 * (shared/db.ts reads it as a deadline): a wait, as a lock timeout is.
 */
const busyCodes = new Set(["40001", "40P01", "55P03", "57014", "25006", "25P03"]);

/**
 * Postgres classes of a deployment's fault rather than a fact's: 42 (a table, column or function
 * missing, a privilege revoked: a half-applied migration, an operator's slip), 3F (no such
 * schema), 3D (no such database), 28 (the login refused). The service's statements are fixed, so
 * these fail every fact alike and the `select 1` of its dependency check still answers: as a
 * fact's own failure every fact was parked after its turn, draining the stream into the parked
 * one (a review renamed a table for a minute). Kept in turn instead, the consumer stalls where its
 * lag and logs show it, and goes on, nothing lost, once the deployment is mended. A handler whose
 * own SQL is wrong for one fact type stalls it the same way; that, too, is mended by a deployment.
 */
const deploymentClasses = ["42", "3F", "3D", "28"];

/**
 * Postgres classes of the database host's own trouble: 58 (an I/O error, a file it cannot find)
 * and XX (internal error, corrupted data or index). Not the fact's: parked, every fact touching
 * the damaged table would drain into the parked stream while `select 1` still answers; kept in
 * turn, the consumer stalls where its lag and logs show it until the database is mended.
 */
const hostClasses = ["58", "XX"];

/** Bad gateway, unavailable, gateway timeout: what the bus, Stripe and the stores answer then. */
const unavailableStatuses = new Set([502, 503, 504]);

/** The NATS client's errors for a bus that is down, reconnecting, or not answering. */
const natsUnavailable = [
  natsErrors.ConnectionError,
  natsErrors.ClosedConnectionError,
  natsErrors.DrainingConnectionError,
  natsErrors.NoRespondersError,
  natsErrors.RequestError,
  natsErrors.TimeoutError,
];

function unavailable(error: unknown): boolean {
  if (error instanceof ApiError) return unavailableStatuses.has(error.status);
  if (natsUnavailable.some((kind) => error instanceof kind)) return true;
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string" || code.length !== 5) return false;
  const codeClass = code.slice(0, 2);
  return busyCodes.has(code) || codeClass === "53" || deploymentClasses.includes(codeClass) ||
    hostClasses.includes(codeClass);
}

/** True when `error`, or one of its causes, says a dependency is unavailable or misdeployed for now. */
export function isTransientFailure(error: unknown): boolean {
  if (isDatabaseOutage(error)) return true;
  let current = error;
  for (let depth = 0; current && depth < 5; depth++) {
    if (unavailable(current)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
