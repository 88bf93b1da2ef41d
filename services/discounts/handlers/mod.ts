/** The handler of every operation of the discounts contract, by contract key. */
import type { Handlers } from "@shared/contract.ts";
import type { discountsContract } from "@shared/contracts/discounts.ts";
import type { DiscountsContext } from "../context.ts";
import { lookupCode } from "./checkout.ts";
import { addCodeLinks, removeCodeLinks, replaceCodeLinks } from "./code_relationships.ts";
import {
  createDiscountCode,
  deleteDiscountCode,
  linkageOfCode,
  listDiscountCodes,
  relatedOfCode,
  showDiscountCode,
  updateDiscountCode,
} from "./codes.ts";
import {
  linkageOfEvent,
  linkageOfTicket,
  linkageOfUser,
  relatedOfEvent,
  relatedOfTicket,
  relatedOfUser,
} from "./parents.ts";
import { calculateAmount } from "./price_preview.ts";
import { confirmUses, releaseUses, reserveUses } from "./redemption.ts";
import { resolveCodes } from "./resolve.ts";
import { resolveRelatedCodes } from "./resolve_related.ts";

type Operations = typeof discountsContract.operations;

/** For `bindOperations(discountsContract, ...)`: a missing or extra key does not compile. */
export function discountsHandlers(ctx: DiscountsContext): Handlers<Operations> {
  return {
    "discount-codes.list": (req) => listDiscountCodes(ctx, req),
    "discount-codes.create": (req) => createDiscountCode(ctx, req),
    "discount-codes.get": (req) => showDiscountCode(ctx, req),
    "discount-codes.update": (req) => updateDiscountCode(ctx, req),
    "discount-codes.delete": (req) => deleteDiscountCode(ctx, req),
    "discount-codes.related": (req) => relatedOfCode(ctx, req),
    "discount-codes.relationship": (req) => linkageOfCode(ctx, req),
    "discount-codes.relationship-replace": (req) => replaceCodeLinks(ctx, req),
    "discount-codes.relationship-add": (req) => addCodeLinks(ctx, req),
    "discount-codes.relationship-remove": (req) => removeCodeLinks(ctx, req),
    "events.related": (req) => relatedOfEvent(ctx, req),
    "events.relationship": (req) => linkageOfEvent(ctx, req),
    "users.related": (req) => relatedOfUser(ctx, req),
    "users.relationship": (req) => linkageOfUser(ctx, req),
    "tickets.related": (req) => relatedOfTicket(ctx, req),
    "tickets.relationship": (req) => linkageOfTicket(ctx, req),
    "checkout.lookup": (req) => lookupCode(ctx, req),
    "orders.calculate-amount": (req) => calculateAmount(ctx, req),
    resolve: (request) => resolveCodes(ctx, request),
    "resolve-related": (request) => resolveRelatedCodes(ctx, request),
    "redemptions.reserve": (request) => reserveUses(ctx, request),
    "redemptions.confirm": (request) => confirmUses(ctx, request),
    "redemptions.release": (request) => releaseUses(ctx, request),
  };
}
