/**
 * `/v1/stripe-authorizations`: link a Stripe account to an event (POST), read it, re-link it
 * with a new code (PATCH), unlink it (DELETE), and its `event` relationship. Stripe is asked
 * before the database changes: a refused or failed exchange leaves what is stored as it was.
 * Each link and unlink holds the accounts lock from its check through its Stripe call to its
 * write (handlers/accounts.ts), so two of them never interleave.
 */
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnprocessableError,
} from "@shared/errors.ts";
import { afterCommitted, requireWritable, type Tx } from "@shared/db.ts";
import { askAccess, requireOrganizer } from "@shared/access.ts";
import { changeWithFact } from "@shared/facts.ts";
import {
  checkForeignFieldsets,
  deletedReply,
  foreignRelationsOf,
  notFound,
  renderLinkage,
  renderOne,
  requireActor,
} from "@shared/handlers/mod.ts";
import { linkPath, parseResourceDocument, validateAttributes } from "@shared/jsonapi.ts";
import { ownerQueryOf, parseSingleQuery, relationshipQuerySpec } from "@shared/query.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { catalog } from "@shared/subjects.ts";
import { z } from "zod";
import {
  type Access,
  type Caller,
  type EventAccess,
  factActor,
  loadAccess,
  type PaymentsContext,
  secretBox,
  stripeSettings,
} from "../context.ts";
import { stripeAuthorizationDef, stripeAuthorizationQuery } from "../resources.ts";
import {
  type AuthorizationRow,
  getAuthorization,
  getAuthorizationOfEvent,
  insertAuthorization,
  replaceAuthorization,
  sameLink,
} from "../store/authorizations.ts";
import { exchangeCode, type StripeSettings, type StripeTokens } from "../stripe.ts";
import { awaitLinkedFlag, withLinkedEvent } from "./linked_flag.ts";
import { authorizationFact } from "../fact_payloads.ts";
import {
  accountIdOf,
  codeDigest,
  holdAccountsLock,
  queueProvisionalRelease,
  queueRelease,
  releaseAfterRollback,
  releaseQueued,
  sealTokens,
  unlinkAuthorization,
  whileUnreachable,
  withdrawRelease,
} from "./accounts.ts";

const code = z.string().trim().min(1, "must not be empty").max(1024);
const createAttributes = z.object({ "stripe-auth-code": code });
const updateAttributes = z.object({ "stripe-auth-code": code.optional() });
const EVENT_POINTER = "/data/relationships/event";
/** What a body may set: its event. Names it has not are ignored (`known`), as on every resource. */
const eventRelationship = { event: { type: "event" } };

function missing(id: string | undefined): never {
  notFound("stripe-authorization", id);
}

function requireStripeEvent(event: EventAccess): void {
  if (!event.canPayByStripe) {
    throw new ForbiddenError("Cannot link Stripe: the event does not accept payment by Stripe");
  }
}

/**
 * The authorization named in the URL, once the caller is known to organize its event. Routes call
 * it before they read their query or body, so a caller who may not see the authorization gets the
 * 401/403/404 that hides it, never a 400 about what they sent.
 */
async function managed(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<{ row: AuthorizationRow; access: Access & { event: EventAccess } }> {
  const row = await getAuthorization(ctx.sql, req.params.id);
  const access = await loadAccess(ctx, req.actor, row?.event_id);
  // An authorization of a deleted (or invisible) event is as good as gone.
  if (!row || !access.event) missing(req.params.id);
  requireOrganizer(access.caller, access.event, "manage this event's Stripe authorization");
  return { row, access: { caller: access.caller, event: access.event } };
}

/** The authorization's reply; `include=event` is resolved by the gateway from the catalog. */
export function renderAuthorization(
  row: AuthorizationRow,
  options: {
    req: HttpRequest;
    status?: number;
    fields?: Record<string, string[]>;
    include?: string[];
  },
): HttpReply {
  // An empty `included` the gateway fills with the event.
  const included = options.include?.includes("event") ? [] : undefined;
  return renderOne(stripeAuthorizationDef, row, { ...options, included });
}

/**
 * The event asked about again, from the catalog itself, once the accounts lock is held: deleted
 * since the first check, its deletion's fact may have been handled already (finding nothing to
 * unlink), and a row stored now would keep its account connected with nobody able to reach it
 * (found by a review: a link slow at Stripe, its event deleted meanwhile, answered 201). Deleted
 * after this, its fact waits for the lock (follow_catalog.ts) and then finds the row.
 */
async function requireEventStillLive(
  ctx: PaymentsContext,
  tx: Tx,
  req: HttpRequest,
  eventId: string,
): Promise<void> {
  const { event } = await askAccess(ctx.bus, req.actor, eventId);
  // A word to Postgres: the lock's idle limit (holdAccountsLock) is sized for the Stripe call
  // alone, which comes next.
  await tx`select 1`;
  if (!event) {
    throw eventGone();
  }
}

/** The event a link names does not exist (or is deleted, or not visible to the caller). */
function eventGone(): UnprocessableError {
  return new UnprocessableError("Cannot link Stripe: the event does not exist", {
    pointer: EVENT_POINTER,
  });
}

function duplicateLink(): ConflictError {
  return new ConflictError("Cannot link Stripe: the event already has a Stripe authorization", {
    pointer: EVENT_POINTER,
  });
}

/** What POST links: the event the caller organizes (one without an authorization) and the code. */
async function linkTarget(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<{ caller: Caller; event: EventAccess; code: string }> {
  const doc = parseResourceDocument(req.body, {
    type: "stripe-authorization",
    relationships: eventRelationship,
    known: stripeAuthorizationDef.relationships,
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
    throw eventGone();
  }
  requireOrganizer(caller, event, "manage this event's Stripe authorization");
  requireStripeEvent(event);
  // Exchanging spends the code: refuse a duplicate before asking Stripe.
  if (await getAuthorizationOfEvent(ctx.sql, event.id)) throw duplicateLink();
  return { caller, event, code: attrs["stripe-auth-code"] };
}

export async function createStripeAuthorization(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  // Who asks comes first, as for every create; the query is read before anything is linked: a bad
  // `include` or fieldset must not spend the code.
  requireActor(req.actor);
  const query = parseSingleQuery(req.query, stripeAuthorizationQuery);
  await checkForeignFieldsets(ctx.bus, stripeAuthorizationDef, query, req.actor);
  const { fields, include } = query;
  const { caller, event, code } = await linkTarget(ctx, req);
  const box = secretBox(ctx);
  const settings = stripeSettings(ctx);
  const exchange: Exchange = {};
  const row = await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx) => {
      // Under the accounts lock: an unlink of the same account cannot land after the exchange.
      await holdAccountsLock(ctx, tx);
      // A link of this event that won the lock first: 409 before the code is spent.
      if (await getAuthorizationOfEvent(tx, event.id)) throw duplicateLink();
      await requireEventStillLive(ctx, tx, req, event.id);
      await requireWritableBothWays(ctx, tx);
      const { tokens, provisional } = await exchanged(ctx, settings, code, exchange);
      const sealed = await sealTokens(box, event.id, tokens);
      const digest = await codeDigest(box, event.id, code);
      const row = await insertAuthorization(tx, event.id, { ...sealed, code_digest: digest });
      await withdrawRelease(tx, provisional);
      return row;
    },
    (row) => authorizationFact(factActor(caller), "created", row),
    { afterRollback: () => releaseUnstored(ctx, exchange) },
  );
  const linked = await awaitLinkedFlag(ctx, req.actor, row.event_id, true);
  return withLinkedEvent(renderAuthorization(row, { req, status: 201, fields, include }), linked);
}

export async function showStripeAuthorization(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  const { row } = await managed(ctx, req);
  const query = parseSingleQuery(req.query, stripeAuthorizationQuery);
  return renderAuthorization(row, { req, fields: query.fields, include: query.include });
}

/**
 * PATCH with a new `stripe-auth-code` links the event to the account it grants; the code the row
 * was last linked with, sent again, changes nothing (`linkedWith`).
 */
export async function updateStripeAuthorization(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  const { row, access } = await managed(ctx, req);
  const query = parseSingleQuery(req.query, stripeAuthorizationQuery);
  await checkForeignFieldsets(ctx.bus, stripeAuthorizationDef, query, req.actor);
  const { fields, include } = query;
  const doc = parseResourceDocument(req.body, {
    type: "stripe-authorization",
    id: req.params.id,
    relationships: eventRelationship,
    known: stripeAuthorizationDef.relationships,
  });
  const ref = doc.relationships.event;
  // Its own event, by id or by identifier (usable wherever an id is, as POST takes it).
  const same = (id: string) => id === String(row.event_id) || id === access.event.identifier;
  if (ref !== undefined && (Array.isArray(ref) || ref === null || !same(ref.id))) {
    throw new UnprocessableError(
      "Cannot link Stripe: an authorization cannot move to another event",
      { pointer: EVENT_POINTER },
    );
  }
  const attrs = validateAttributes(updateAttributes, doc.attributes);
  const newCode = attrs["stripe-auth-code"];
  if (newCode === undefined || await linkedWith(ctx, row, newCode)) {
    return renderAuthorization(row, { req, fields, include });
  }
  requireStripeEvent(access.event);
  const updated = await relink(ctx, { row, caller: access.caller, code: newCode });
  return renderAuthorization(updated, { req, fields, include });
}

/**
 * Whether `code` is the one `row` was last linked with: the frontend's event wizard sends it back
 * on every save after the link (ember-data keeps the write-only value), and Stripe refuses a code
 * twice. Such a PATCH changes nothing, as one without a code, and Stripe is not asked. Rows linked
 * before `code_digest` existed have none: their code is exchanged, as before.
 */
async function linkedWith(
  ctx: PaymentsContext,
  row: AuthorizationRow,
  code: string,
): Promise<boolean> {
  if (row.code_digest === null) return false;
  return await codeDigest(secretBox(ctx), row.event_id, code) === row.code_digest;
}

function changedMeanwhile(): never {
  throw new ConflictError(
    "Cannot link Stripe: the authorization was changed at the same time; read it and retry",
  );
}

/** 404 when `row` is gone, 409 when it was re-linked since it was read. */
async function requireUnchanged(tx: Tx, row: AuthorizationRow): Promise<void> {
  const current = await getAuthorization(tx, row.id);
  if (!current) missing(row.id);
  if (!sameLink(current, row)) changedMeanwhile();
}

/**
 * A read-only database (a standby after a failover, maintenance) answers reads and locks, so a
 * link got as far as Stripe's exchange, which spends the code and connects the account, before its
 * first write failed: the release could not be queued either, and the account stayed connected
 * with no row (a review, 2026-12-06). Both sessions that write for a link (its transaction, and
 * `ownConnection`, where the provisional release goes) are asked first.
 */
async function requireWritableBothWays(ctx: PaymentsContext, tx: Tx): Promise<void> {
  await requireWritable(ctx.sql, tx);
  await requireWritable(ctx.sql, ctx.ownConnection);
}

type Account = { id: string; lookup: string };

/** What a link's exchange has made so far: the account Stripe named, its provisional release. */
interface Exchange {
  accountId?: string;
  provisional?: string;
}

/**
 * Exchanges `code` at Stripe, noting in `exchange` the account it connects as soon as Stripe names
 * it and then its provisional release (`queueProvisionalRelease`); returns the tokens and that
 * release's id, which the link withdraws as it stores its row.
 */
async function exchanged(
  ctx: PaymentsContext,
  settings: StripeSettings,
  code: string,
  exchange: Exchange,
): Promise<{ tokens: StripeTokens; provisional: string }> {
  const tokens = await exchangeCode(settings, code, { onAccount: (id) => exchange.accountId = id });
  const provisional = await queueProvisionalRelease(ctx, tokens.accountId);
  exchange.provisional = provisional;
  return { tokens, provisional };
}

/**
 * An account exchanged for a change that did not commit (a deadline, a lost race, Postgres lost
 * mid-change, an answer from Stripe that cannot be stored, or, with an Idempotency-Key, the held
 * transaction refused at commit after the handler returned): it must not stay connected without a
 * row. Its provisional release is made due; an account whose release could not be queued (an
 * unusable answer, Postgres lost) is queued on its own (the change's transaction is gone). Either
 * is released after the reply: the exchange already took up to STRIPE_TIMEOUT_MS. The release
 * keeps the account if a row uses it (a COMMIT whose outcome was lost).
 */
function releaseUnstored(ctx: PaymentsContext, exchange: Exchange): void {
  const { accountId, provisional } = exchange;
  if (provisional !== undefined) {
    return ctx.background.run(() => releaseAfterRollback(ctx, provisional));
  }
  if (accountId === undefined) return;
  ctx.background.run(async () => {
    const lookup = await secretBox(ctx).digest(accountId);
    await whileUnreachable(ctx, () => queueRelease(ctx, ctx.sql, { id: accountId, lookup }));
    await releaseQueued(ctx);
  });
}

/**
 * Exchanges `code` and replaces the stored keys with the new account's, under the accounts lock,
 * then releases the old account (after the reply, as the exchange already took up to
 * STRIPE_TIMEOUT_MS).
 */
async function relink(
  ctx: PaymentsContext,
  { row, caller, code }: { row: AuthorizationRow; caller: Caller; code: string },
): Promise<AuthorizationRow> {
  const box = secretBox(ctx);
  const settings = stripeSettings(ctx);
  const oldAccount = { id: await accountIdOf(box, row), lookup: row.account_lookup };
  const exchange: Exchange = {};
  const updated = await changeWithFact(
    ctx.sql,
    ctx.relay,
    async (tx) => {
      await holdAccountsLock(ctx, tx);
      // Unlinked or re-linked while this waited: 404/409 before the code is spent.
      await requireUnchanged(tx, row);
      await requireWritableBothWays(ctx, tx);
      const { tokens, provisional } = await exchanged(ctx, settings, code, exchange);
      const sealed = await sealTokens(box, row.event_id, tokens);
      const values = { ...sealed, code_digest: await codeDigest(box, row.event_id, code) };
      // Under the lock nothing else writes the row: null would be a bug, kept safe anyway.
      const updated = await replaceAuthorization(tx, row, values) ?? changedMeanwhile();
      await withdrawRelease(tx, provisional);
      // The old account's release, as durable as the change that frees it.
      if (oldAccount.lookup !== sealed.account_lookup) await queueRelease(ctx, tx, oldAccount);
      return updated;
    },
    (updated) => authorizationFact(factActor(caller), "updated", updated, row),
    // The old row stands, the new account goes.
    { afterRollback: () => releaseUnstored(ctx, exchange) },
  );
  // With an Idempotency-Key the change (and the queued release) commits after the reply.
  afterCommitted(() => ctx.background.run(() => releaseQueued(ctx)));
  return updated;
}

/**
 * Unlinks the account at Stripe, then deletes the row, under the accounts lock (unreachable or
 * slow Stripe: 502/504 and the row stays). The row is read again under the lock: a PATCH that
 * re-linked it meanwhile moved it to another account, and that one is unlinked.
 */
export async function deleteStripeAuthorization(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  const { row, access } = await managed(ctx, req);
  const stripe = { box: secretBox(ctx), settings: stripeSettings(ctx) };
  const deleted = await changeWithFact(
    ctx.sql,
    ctx.relay,
    (tx) => unlinkAuthorization(ctx, tx, { find: (tx) => getAuthorization(tx, row.id), stripe }),
    (deleted) => deleted && authorizationFact(factActor(access.caller), "deleted", deleted),
  );
  if (!deleted) missing(req.params.id);
  const unlinked = await awaitLinkedFlag(ctx, req.actor, deleted.event_id, false);
  return withLinkedEvent(deletedReply, unlinked);
}

/** `managed`, for a route of its `event` relationship (the only one it has). */
async function managedForEvent(ctx: PaymentsContext, req: HttpRequest): Promise<AuthorizationRow> {
  if (req.params.rel !== "event") missing(req.params.id);
  return (await managed(ctx, req)).row;
}

/** `GET /v1/stripe-authorizations/{id}/event`: the event, as the catalog shows it. */
export async function relatedOfAuthorization(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  const row = await managedForEvent(ctx, req);
  // `include` and `fields` follow the event's own routes: the catalog checks them (400), loads
  // what is included and applies the fieldsets; the rest of the query is this route's.
  const { include, fields, rest } = ownerQueryOf(req.query);
  parseSingleQuery(rest, {});
  const { data, included } = await ctx.bus.request(catalog.resolve, {
    actor: req.actor,
    type: "event",
    ids: [row.event_id],
    ...(include.length ? { include } : {}),
    ...(Object.keys(fields).length ? { fields } : {}),
  });
  if (!data[0]) {
    throw new NotFoundError(`Cannot find the event of stripe-authorization ${row.id}`);
  }
  const document = {
    data: data[0],
    links: { self: linkPath(req.path) },
    jsonapi: { version: "1.0" },
  };
  return {
    status: 200,
    body: included ? { ...document, included } : document,
    // What other services serve (the event's `discount-codes`): the gateway adds it, linked.
    foreignRelations: foreignRelationsOf("event", data, include),
  };
}

export async function linkageOfAuthorization(
  ctx: PaymentsContext,
  req: HttpRequest,
): Promise<HttpReply> {
  const row = await managedForEvent(ctx, req);
  // `include=event` is the authorization's own path: the gateway adds the event.
  const spec = relationshipQuerySpec(stripeAuthorizationQuery, req.params.rel);
  const query = parseSingleQuery(req.query, spec);
  return renderLinkage({ type: "event" }, { id: row.event_id }, {
    req,
    parent: stripeAuthorizationDef,
    includes: { query, owned: { def: stripeAuthorizationDef, row } },
  });
}
