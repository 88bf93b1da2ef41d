/**
 * Discount codes as the public payloads of the discounts service's facts: the code as the HTTP
 * API shows it (codeDef in resources.ts), flattened (shared/fact_data.ts); redemption facts add
 * the order's reservation. The one place a code row becomes fact data.
 */
import { resourceData } from "@shared/fact_data.ts";
import type { FactType } from "@shared/fact_catalog.ts";
import type { FactActor, NewFact } from "@shared/facts.ts";
import type { Reservation } from "@shared/schemas/bus.ts";
import { codeDef } from "./resources.ts";
import type { CodeRow } from "./store/codes.ts";

export type CodeVerb = "created" | "updated" | "deleted";
export type RedemptionVerb = "reserved" | "confirmed" | "released";

/** `discounts.discount-code.<verb>` about the code `row`. */
export function codeFact(actor: FactActor, verb: CodeVerb, row: CodeRow): NewFact {
  return {
    type: `discounts.discount-code.${verb}` satisfies FactType,
    actor,
    data: resourceData(codeDef, row),
  };
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
