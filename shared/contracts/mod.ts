/**
 * Every service's contract, and the tables derived from them: which service owns each JSON:API
 * type and each cross-service relationship, and which services `/health` expects.
 */
import type { ServiceContract } from "../contract.ts";
import { auditContract } from "./audit.ts";
import { catalogContract } from "./catalog.ts";
import { discountsContract } from "./discounts.ts";
import { paymentsContract } from "./payments.ts";

export { auditContract, catalogContract, discountsContract, paymentsContract };

/** In the order the gateway mounts their routes (a service's specific paths before the rest). */
export const contracts: readonly ServiceContract[] = [
  catalogContract,
  discountsContract,
  paymentsContract,
  auditContract,
];

function ownerTable(entries: (contract: ServiceContract) => readonly string[] | undefined) {
  const table: Record<string, string> = {};
  for (const contract of contracts) {
    for (const key of entries(contract) ?? []) {
      if (table[key]) throw new Error(`${key} is claimed by ${table[key]} and ${contract.service}`);
      table[key] = contract.service;
    }
  }
  return table;
}

/** Which service owns each JSON:API type (for cross-service `include`). */
export const typeOwners: Readonly<Record<string, string>> = ownerTable((c) => c.types);

/** Which service owns each relationship served outside the parent's own service. */
export const relationOwners: Readonly<Record<string, string>> = ownerTable((c) => c.relations);

/** The services `/health` expects to find on the bus. */
export const serviceNames: readonly string[] = contracts.map((contract) => contract.service);
