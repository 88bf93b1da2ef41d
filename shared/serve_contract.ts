/**
 * How every service puts its contract on the bus: one handler per operation key
 * (`bindOperations`), `Idempotency-Key` honoured on HTTP writes except where the contract says a
 * secret travels, database outages answered 503 (shared/idempotency.ts), and the service's name
 * and description as the contract gives them (NATS service discovery shows them), with its
 * database's state in each ping answer (shared/db_health.ts), for `/health`.
 */
import type { Bus, RunningService } from "./bus.ts";
import { bindOperations, type Handlers, type Operation, type ServiceContract } from "./contract.ts";
import type { Sql } from "./db.ts";
import { databaseProblem } from "./db_health.ts";
import { type IdempotencyOptions, withIdempotency } from "./idempotency.ts";

export function serveContract<Ops extends Record<string, Operation>>(
  options: {
    bus: Bus;
    sql: Sql;
    contract: ServiceContract<Ops>;
    handlers: Handlers<Ops>;
    version: string;
    /** Refuses a caller whose token no longer counts, before a keyed answer is replayed. */
    authenticate?: IdempotencyOptions["authenticate"];
  },
): RunningService {
  const { bus, sql, contract, version, authenticate } = options;
  const carrySecrets = Object.values(contract.operations)
    .filter((operation) => operation.carriesSecrets)
    .map((operation) => operation.endpoint);
  const problems = async () => [await databaseProblem(sql)].filter((p) => p !== undefined);
  return bus.serve(
    { name: contract.service, version, description: contract.description, problems },
    withIdempotency(sql, bindOperations(contract, options.handlers), {
      carrySecrets,
      authenticate,
    }),
  );
}
