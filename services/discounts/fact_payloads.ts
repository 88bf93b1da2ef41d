/**
 * Discount codes as the public payloads of the discounts service's facts: the code as the HTTP
 * API shows it (codeDef in resources.ts), flattened (shared/fact_data.ts); redemption facts add
 * the order's reservation. The one place a code row becomes fact data.
 */
import { changedNames, resourceData } from "@shared/fact_data.ts";
import type { FactType } from "@shared/fact_catalog.ts";
import type { FactActor, NewFact } from "@shared/facts.ts";
import type { Reservation } from "@shared/schemas/bus.ts";
import { codeDef } from "./resources.ts";
import type { CodeRow } from "./store/codes.ts";

export type CodeVerb = "created" | "updated" | "deleted";
export type RedemptionVerb = "reserved" | "confirmed" | "released";

/**
 * `discounts.discount-code.<verb>` about the code `row`; an update names what it `changed`
 * (`changedCodeNames`, or the relationship a catalog fact took away).
 */
export function codeFact(
  actor: FactActor,
  verb: CodeVerb,
  row: CodeRow,
  changed?: readonly string[],
): NewFact {
  return {
    type: `discounts.discount-code.${verb}` satisfies FactType,
    actor,
    data: resourceData(codeDef, row),
    ...(changed && { changed }),
  };
}

/** The names of a code's payload that differ between `before` and `after`. */
export function changedCodeNames(before: CodeRow, after: CodeRow): string[] {
  return changedNames(resourceData(codeDef, before), resourceData(codeDef, after));
}

/** A redemption step: the code after it and the order's reservation. */
export function redemptionFact(
  actor: FactActor,
  verb: RedemptionVerb,
  row: CodeRow,
  reservation: Reservation,
): NewFact {
  return {
    type: `discounts.discount-code.${verb}` satisfies FactType,
    actor,
    data: {
      ...resourceData(codeDef, row),
      reservation: {
        "order-id": reservation.orderId,
        quantity: reservation.quantity,
        state: reservation.state,
      },
    },
  };
}
