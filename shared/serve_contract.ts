/**
 * How every service puts its contract on the bus: one handler per operation key
 * (`bindOperations`), `Idempotency-Key` honoured on HTTP writes except where the contract says a
 * secret travels, database outages answered 503 (shared/idempotency.ts), a conditional write
 * refused (412) when its resource changed since the read its preconditions held on
 * (shared/read_snapshot.ts, applied there too), a token that no longer counts refused 401
 * before anything else (shared/caller_first.ts), and the service's name and description as the
 * contract gives them (NATS service discovery shows them), with its database's state in each
 * ping answer (shared/db_health.ts), for `/health`.
 */
import type { Bus, RunningService } from "./bus.ts";
import { type Authenticate, callerFirst } from "./caller_first.ts";
import { bindOperations, type Handlers, type Operation, type ServiceContract } from "./contract.ts";
import type { Sql } from "./db.ts";
import { databaseProblem } from "./db_health.ts";
import { withIdempotency } from "./idempotency.ts";

export function serveContract<Ops extends Record<string, Operation>>(
  options: {
    bus: Bus;
    sql: Sql;
    contract: ServiceContract<Ops>;
    handlers: Handlers<Ops>;
    version: string;
    /**
     * Refuses a caller whose token no longer counts: before a keyed answer is replayed, and in
     * place of any other refusal.
     */
    authenticate?: Authenticate;
    /** A keyed digest for `Idempotency-Key` rows (shared/idempotency.ts says when). */
    requestDigest?: (text: string) => Promise<string>;
    /** What discovery tells of each instance (shared/bus.ts `ServiceInfo.metadata`). */
    metadata?: Record<string, string>;
  },
): RunningService {
  const { bus, sql, contract, version, authenticate, requestDigest, metadata } = options;
  const unkeyed = Object.values(contract.operations)
    .filter((operation) => operation.carriesSecrets || operation.changesNothing)
    .map((operation) => operation.endpoint);
  const problems = async () => [await databaseProblem(sql)].filter((p) => p !== undefined);
  const bound = bindOperations(contract, options.handlers);
  const routes = authenticate ? callerFirst(bound, authenticate) : bound;
  return bus.serve(
    { name: contract.service, version, description: contract.description, problems, metadata },
    withIdempotency(sql, routes, { unkeyed, authenticate, requestDigest }),
  );
}
