/** The order flow's bus capabilities: reserve, confirm and release uses of a code. */
import { type Route, route } from "@shared/bus.ts";
import { changeWithFact, type FactActor } from "@shared/facts.ts";
import { discountsRedemption, type RedemptionAnswer } from "@shared/subjects.ts";
import type { DiscountsContext } from "../context.ts";
import { confirm, type RedemptionResult, release, reserve } from "../store/redemptions.ts";
import { redemptionFact, type RedemptionVerb } from "../fact_payloads.ts";
import type { Queryable } from "@shared/db.ts";

function answer(result: RedemptionResult): RedemptionAnswer {
  const usedCount = Number(result.code.used_count);
  const cap = result.code.tickets_number;
  return {
    reservation: result.reservation,
    usedCount,
    remaining: cap === null ? null : Math.max(0, Number(cap) - usedCount),
  };
}

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

export function redemptionRoutes(ctx: DiscountsContext): Route[] {
  return [
    route(
      discountsRedemption.reserve,
      ({ actor, ...input }) => redeem(ctx, "reserved", actor, (tx) => reserve(tx, input)),
    ),
    route(
      discountsRedemption.confirm,
      ({ actor, ...input }) => redeem(ctx, "confirmed", actor, (tx) => confirm(tx, input)),
    ),
    route(
      discountsRedemption.release,
      ({ actor, ...input }) => redeem(ctx, "released", actor, (tx) => release(tx, input)),
    ),
  ];
}
