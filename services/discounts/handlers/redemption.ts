/** The order flow's bus capabilities: reserve, confirm and release uses of a code. */
import { changeWithFact, type FactActor } from "@shared/facts.ts";
import type { Queryable } from "@shared/db.ts";
import type { reservationRequestSchema, reserveRequestSchema } from "@shared/schemas/bus.ts";
import type { RedemptionAnswer } from "@shared/schemas/bus.ts";
import type { z } from "zod";
import type { DiscountsContext } from "../context.ts";
import { confirm, type RedemptionResult, release, reserve } from "../store/redemptions.ts";
import { redemptionFact, type RedemptionVerb } from "../fact_payloads.ts";

type ReserveRequest = z.infer<typeof reserveRequestSchema>;
type ReservationRequest = z.infer<typeof reservationRequestSchema>;

function answer(result: RedemptionResult): RedemptionAnswer {
  const usedCount = Number(result.code.used_count);
  const cap = result.code.tickets_number;
  return {
    reservation: result.reservation,
    usedCount,
    remaining: cap === null ? null : Math.max(0, Number(cap) - usedCount),
  };
}

/** One redemption step in one transaction, with its fact when it changed something. */
async function redeem(
  ctx: DiscountsContext,
  verb: RedemptionVerb,
  actor: FactActor | undefined,
  change: (tx: Queryable) => Promise<RedemptionResult>,
): Promise<RedemptionAnswer> {
  const result = await changeWithFact(
    ctx.sql,
    ctx.relay,
    change,
    (result) =>
      result.changed ? redemptionFact(actor ?? null, verb, result.code, result.reservation) : null,
  );
  return answer(result);
}

export function reserveUses(
  ctx: DiscountsContext,
  { actor, ...input }: ReserveRequest,
): Promise<RedemptionAnswer> {
  return redeem(ctx, "reserved", actor, (tx) => reserve(tx, input));
}

export function confirmUses(
  ctx: DiscountsContext,
  { actor, ...input }: ReservationRequest,
): Promise<RedemptionAnswer> {
  return redeem(ctx, "confirmed", actor, (tx) => confirm(tx, input));
}

export function releaseUses(
  ctx: DiscountsContext,
  { actor, ...input }: ReservationRequest,
): Promise<RedemptionAnswer> {
  return redeem(ctx, "released", actor, (tx) => release(tx, input));
}
