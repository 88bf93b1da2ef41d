/**
 * `/v1/stripe-authorizations`: link a Stripe account to an event (POST), read it, re-link it
 * with a new code (PATCH), unlink it (DELETE), and its `event` relationship.
 */
import { type Route, route } from "@shared/bus.ts";
import { ConflictError, ForbiddenError, UnprocessableError } from "@shared/errors.ts";
import { changeWithFact } from "@shared/facts.ts";
import { deletedReply, parseResourceDocument, validateAttributes } from "@shared/jsonapi.ts";
import { parseSingleQuery } from "@shared/query.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { catalog, payments } from "@shared/subjects.ts";
import { z } from "zod";
import {
  type Access,
  type EventAccess,
  factActor,
  loadAccess,
  type PaymentsContext,
  requireActor,
  requireOrganizer,
  secretBox,
  stripeSettings,
} from "../context.ts";
import { stripeAuthorizationQuery } from "../resources.ts";
import {
  accountInUse,
  type AuthorizationRow,
  deleteAuthorization,
  getAuthorization,
  getAuthorizationOfEvent,
  insertAuthorization,
  replaceAuthorization,
} from "../store/authorizations.ts";
import { deauthorize, DeauthorizeRefusedError, exchangeCode } from "../stripe.ts";
import { authorizationFact } from "../fact_payloads.ts";
import {
  accountIdOf,
  notFound,
  releaseLater,
  renderAuthorization,
  renderLinkage,
  sealTokens,
} from "./common.ts";

const code = z.string().trim().min(1, "must not be empty").max(1024);
const createAttributes = z.object({ "stripe-auth-code": code });
const updateAttributes = z.object({ "stripe-auth-code": code.optional() });
const EVENT_POINTER = "/data/relationships/event";

function missing(id: string | undefined): never {
  notFound(`Cannot find stripe-authorization ${JSON.stringify(id ?? "")}`);
}

function requireStripeEvent(event: EventAccess): void {
  if (!event.canPayByStripe) {
    throw new ForbiddenError("Cannot link Stripe: the event does not accept payment by Stripe");
  }
}

/** The authorization named in the URL, once the caller is known to organize its event. */
async function managed(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<{ row: AuthorizationRow; access: Access & { event: EventAccess } }> {
  const row = await getAuthorization(ctx.sql, req.params.id);
  const access = await loadAccess(ctx, req.actor, row?.event_id);
  // An authorization of a deleted (or invisible) event is as good as gone.
  if (!row || !access.event) missing(req.params.id);
  requireOrganizer(access.caller, access.event);
  return { row, access: { caller: access.caller, event: access.event } };
}

export function authorizationRoutes(ctx: PaymentsContext): Route[] {
  const a = payments.authorizations;
  return [
    route(a.create, async (req) => {
      const doc = parseResourceDocument(req.body, {
        type: "stripe-authorization",
        relationships: { event: { type: "event" } },
      });
      requireActor(req.actor);
      const ref = doc.relationships.event;
      if (!ref || Array.isArray(ref)) {
        throw new UnprocessableError("Cannot link Stripe: the event relationship is required", {
          pointer: EVENT_POINTER,
        });
      }
      const attrs = validateAttributes(createAttributes, doc.attributes);
      const { caller, event } = await loadAccess(ctx, req.actor, ref.id);
      if (!event) {
        throw new UnprocessableError("Cannot link Stripe: the event does not exist", {
          pointer: EVENT_POINTER,
        });
      }
      requireOrganizer(caller, event);
      requireStripeEvent(event);
      // Exchanging spends the code: refuse a duplicate before asking Stripe.
      if (await getAuthorizationOfEvent(ctx.sql, event.id)) {
        throw new ConflictError(
          "Cannot link Stripe: the event already has a Stripe authorization",
          {
            pointer: EVENT_POINTER,
          },
        );
      }
      const box = secretBox(ctx);
      const settings = stripeSettings(ctx);
      const tokens = await exchangeCode(settings, attrs["stripe-auth-code"]);
      const sealed = await sealTokens(box, event.id, tokens);
      let row: AuthorizationRow;
      try {
        row = await changeWithFact(
          ctx.sql,
          ctx.relay,
          (tx) => insertAuthorization(tx, event.id, sealed),
          (row) => authorizationFact(factActor(caller), "created", row),
        );
      } catch (error) {
        // Lost a race to another link of the same event: do not leave this account connected.
        // After the reply: the exchange already took up to STRIPE_TIMEOUT_MS.
        releaseLater(ctx, settings, { id: tokens.accountId, lookup: sealed.account_lookup });
        throw error;
      }
      return renderAuthorization(row, req, { status: 201 });
    }),

    route(a.get, async (req) => {
      const query = parseSingleQuery(req.query, stripeAuthorizationQuery);
      const { row } = await managed(ctx, req);
      return renderAuthorization(row, req, { fields: query.fields, include: query.include });
    }),

    route(a.update, async (req) => {
      const { row, access } = await managed(ctx, req);
      const doc = parseResourceDocument(req.body, {
        type: "stripe-authorization",
        id: req.params.id,
        relationships: { event: { type: "event" } },
      });
      const ref = doc.relationships.event;
      if (ref !== undefined && (Array.isArray(ref) || ref?.id !== row.event_id)) {
        throw new UnprocessableError(
          "Cannot link Stripe: an authorization cannot move to another event",
          { pointer: EVENT_POINTER },
        );
      }
      const attrs = validateAttributes(updateAttributes, doc.attributes);
      const newCode = attrs["stripe-auth-code"];
      if (newCode === undefined) return renderAuthorization(row, req);
      requireStripeEvent(access.event);
      const box = secretBox(ctx);
      const settings = stripeSettings(ctx);
      const oldAccount = { id: await accountIdOf(box, row), lookup: row.account_lookup };
      // Stripe first: a refused or failed exchange leaves the stored keys as they were.
      const tokens = await exchangeCode(settings, newCode);
      const sealed = await sealTokens(box, row.event_id, tokens);
      const updated = await changeWithFact(
        ctx.sql,
        ctx.relay,
        (tx) => replaceAuthorization(tx, row, sealed),
        (updated) => updated && authorizationFact(factActor(access.caller), "updated", updated),
      );
      const newAccount = { id: tokens.accountId, lookup: sealed.account_lookup };
      // Releases run after the reply: the exchange already took up to STRIPE_TIMEOUT_MS.
      if (!updated) {
        // Gone, or re-linked by a concurrent PATCH since we read it: the other one stands.
        releaseLater(ctx, settings, newAccount);
        if (!await getAuthorization(ctx.sql, row.id)) missing(req.params.id);
        throw new ConflictError(
          "Cannot link Stripe: the authorization was changed at the same time; read it and retry",
        );
      }
      if (oldAccount.lookup !== newAccount.lookup) releaseLater(ctx, settings, oldAccount);
      return renderAuthorization(updated, req);
    }),

    route(a.delete, async (req) => {
      const { row, access } = await managed(ctx, req);
      const box = secretBox(ctx);
      const settings = stripeSettings(ctx);
      const accountId = await accountIdOf(box, row);
      // Other events linked to the same account keep it connected.
      if (!await accountInUse(ctx.sql, row.account_lookup, { except: row.id })) {
        try {
          await deauthorize(settings, accountId);
        } catch (error) {
          // Stripe refusing means the account is not connected any more: nothing to undo.
          // Unreachable or slow: keep the row, so the client can retry (502/504).
          if (!(error instanceof DeauthorizeRefusedError)) throw error;
          ctx.log.warn("Stripe refused to deauthorize; deleting the authorization anyway", {
            authorization: row.id,
            reason: error.message,
          });
        }
      }
      const deleted = await changeWithFact(
        ctx.sql,
        ctx.relay,
        (tx) => deleteAuthorization(tx, row.id),
        (deleted) => deleted && authorizationFact(factActor(access.caller), "deleted", deleted),
      );
      if (!deleted) missing(req.params.id);
      return deletedReply;
    }),

    route(a.related, async (req) => {
      if (req.params.rel !== "event") missing(req.params.id);
      const { row } = await managed(ctx, req);
      const { data } = await ctx.bus.request(catalog.resolve, {
        actor: req.actor,
        type: "event",
        ids: [row.event_id],
      });
      if (!data[0]) notFound(`Cannot find the event of stripe-authorization ${row.id}`);
      return {
        status: 200,
        body: { data: data[0], links: { self: req.path }, jsonapi: { version: "1.0" } },
      };
    }),

    route(a.relationship, async (req) => {
      if (req.params.rel !== "event") missing(req.params.id);
      const { row } = await managed(ctx, req);
      return renderLinkage(`/v1/stripe-authorizations/${row.id}`, "event", {
        type: "event",
        id: row.event_id,
      });
    }),
  ];
}
