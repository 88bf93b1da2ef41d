/** What the payments handlers share: rendering, sealing a code exchange's keys. */
import { NotFoundError, ServiceUnavailableError } from "@shared/errors.ts";
import { relationshipDocument, singleDocument } from "@shared/jsonapi.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import type { PaymentsContext } from "../context.ts";
import type { SecretBox } from "../crypto.ts";
import { stripeAuthorizationDef } from "../resources.ts";
import { accountInUse, type AuthorizationRow, type SealedValues } from "../store/authorizations.ts";
import { deauthorize, type StripeSettings, type StripeTokens } from "../stripe.ts";

export function notFound(detail: string): never {
  throw new NotFoundError(detail);
}

export function renderAuthorization(
  row: AuthorizationRow,
  req: HttpRequest,
  options: { status?: number; fields?: Record<string, string[]>; include?: string[] } = {},
): HttpReply {
  const created = options.status === 201;
  const self = created ? `/v1/stripe-authorizations/${row.id}` : req.path;
  return {
    status: options.status ?? 200,
    body: singleDocument(stripeAuthorizationDef, row, {
      self,
      fields: options.fields,
      // The event lives in the catalog: the gateway resolves it into `included`.
      included: options.include?.includes("event") ? [] : undefined,
    }),
    location: created ? self : undefined,
    foreignIncludes: options.include?.includes("event") ? { event: [row.event_id] } : undefined,
  };
}

/** `/relationships/<rel>` of a to-one relationship. */
export function renderLinkage(
  base: string,
  rel: string,
  data: { type: string; id: string } | null,
): HttpReply {
  return {
    status: 200,
    body: relationshipDocument({
      self: `${base}/relationships/${rel}`,
      related: `${base}/${rel}`,
      data,
    }),
  };
}

/** Contexts bind each sealed value to its column and event: swapped values fail to open. */
function sealContext(column: string, eventId: string): string {
  return `${column}:event:${eventId}`;
}

export async function sealTokens(
  box: SecretBox,
  eventId: string,
  tokens: StripeTokens,
): Promise<SealedValues> {
  return {
    stripe_publishable_key: tokens.publishableKey,
    access_token: await box.seal(tokens.accessToken, sealContext("access_token", eventId)),
    refresh_token: tokens.refreshToken === null
      ? null
      : await box.seal(tokens.refreshToken, sealContext("refresh_token", eventId)),
    stripe_user_id: await box.seal(tokens.accountId, sealContext("stripe_user_id", eventId)),
    account_lookup: await box.digest(tokens.accountId),
    scope: tokens.scope,
    livemode: tokens.livemode,
  };
}

/**
 * The stored keys cannot be opened: PAYMENTS_ENCRYPTION_KEY changed since they were sealed (keys
 * do not rotate, see crypto.ts) or the row was altered. Nothing a retry fixes: 503 for the
 * operator, and the bus logs it once at error level (the message holds no secret).
 */
class StoredKeysUnreadableError extends ServiceUnavailableError {
  constructor() {
    super("Cannot read the stored Stripe keys: PAYMENTS_ENCRYPTION_KEY does not match");
  }
}

/** The connected account's id; `StoredKeysUnreadableError` (503) when it cannot be opened. */
export async function accountIdOf(box: SecretBox, row: AuthorizationRow): Promise<string> {
  try {
    return await box.open(row.stripe_user_id, sealContext("stripe_user_id", row.event_id));
  } catch {
    throw new StoredKeysUnreadableError();
  }
}

/**
 * `releaseAccount` after the reply: an exchange plus a deauthorization back to back could
 * outlast the gateway's REQUEST_TIMEOUT_MS.
 */
export function releaseLater(
  ctx: PaymentsContext,
  settings: StripeSettings,
  account: { id: string; lookup: string },
): void {
  ctx.background.run(() => releaseAccount(ctx, settings, account));
}

/**
 * Disconnects the platform from an account no authorization uses any more (one account may
 * serve several events: deauthorizing it would break the others). Best effort: failures are
 * logged without the account id, never thrown.
 */
export async function releaseAccount(
  ctx: PaymentsContext,
  settings: StripeSettings,
  account: { id: string; lookup: string },
): Promise<void> {
  try {
    if (await accountInUse(ctx.sql, account.lookup)) return;
    await deauthorize(settings, account.id);
  } catch (error) {
    ctx.log.warn("cannot deauthorize an unused Stripe account", {
      reason: (error as Error).message,
    });
  }
}
