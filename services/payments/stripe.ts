/**
 * The Stripe Connect OAuth client: exchange an authorization code for the account's keys, and
 * deauthorize an account. Every call is bounded in time: an unreachable Stripe becomes 502, a
 * slow one 504, and Stripe's own refusal (a 4xx with `error_description`) becomes 422 carrying
 * that description, with any secret-looking token in it blanked out.
 *
 * Each call is counted (`oe_stripe_requests_total{operation, outcome}`) and timed
 * (`oe_stripe_request_duration_seconds{operation}`): the operation is the endpoint called
 * (`oauth_token`, `deauthorize`) and the outcome one of `ok`, `error` (Stripe answered with an
 * error status), `timeout` and `unreachable`; never a code, key or account.
 */
import { BadGatewayError, GatewayTimeoutError, UnprocessableError } from "@shared/errors.ts";
import { metrics } from "@shared/metrics.ts";

export interface StripeSettings {
  /** Base URL of Connect's OAuth endpoints, e.g. "https://connect.stripe.com". */
  connectUrl: string;
  secretKey: string;
  clientId: string;
  timeoutMs: number;
}

/** What a successful code exchange gives the platform. */
export interface StripeTokens {
  accessToken: string;
  refreshToken: string | null;
  /** The connected account id (`acct_...`). */
  accountId: string;
  publishableKey: string;
  scope: string | null;
  livemode: boolean;
}

/** Where a refusal points in the client's request (set by the caller of `exchangeCode`). */
const CODE_POINTER = "/data/attributes/stripe-auth-code";

/**
 * Stripe's descriptions may quote what was sent (e.g. "Authorization code does not exist:
 * ac_..."): every value we sent, and anything shaped like a Stripe secret or id, is blanked.
 * A short value (under 8 characters: no real code or key is) only where it stands as a whole
 * token: blanked inside words too, a code "x" made "does not e[redacted]ist".
 */
export function scrub(text: string, sent: readonly string[]): string {
  let out = text;
  for (const value of sent) {
    if (value.length >= 8) out = out.replaceAll(value, "[redacted]");
    else if (value) out = out.replaceAll(wholeToken(value), "[redacted]");
  }
  return out.replaceAll(/\b(?:ac|sk|rk|rt|acct|whsec)_[A-Za-z0-9_]+/g, "[redacted]").slice(0, 500);
}

/** `value` where no letter, digit or underscore touches it. */
function wholeToken(value: string): RegExp {
  const escaped = value.replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![A-Za-z0-9_])${escaped}(?![A-Za-z0-9_])`, "g");
}

interface StripeReply {
  status: number;
  body: Record<string, unknown> | null;
}

/** The calls this client makes, by the Stripe endpoint each posts to. */
const OPERATIONS = { oauth_token: "/oauth/token", deauthorize: "/oauth/deauthorize" } as const;
type Operation = keyof typeof OPERATIONS;
const OUTCOMES = ["ok", "error", "timeout", "unreachable"] as const;
type Outcome = typeof OUTCOMES[number];

const requests = metrics.counter(
  "oe_stripe_requests",
  "Calls to Stripe by operation and outcome (ok; error: Stripe answered with an error status; " +
    "timeout; unreachable)",
  ["operation", "outcome"],
);
const durations = metrics.histogram(
  "oe_stripe_request_duration_seconds",
  "Time from calling Stripe to its whole answer, or to the call failing",
  ["operation"],
);
// Every series from the start, at 0: an alert on the rate of errors has something to read.
for (const operation of Object.keys(OPERATIONS) as Operation[]) {
  durations.series(operation);
  for (const outcome of OUTCOMES) requests.series(operation, outcome);
}

/** Counts one call to Stripe that began at `began` (`performance.now()` time). */
function meter(operation: Operation, began: number, outcome: Outcome): void {
  durations.series(operation).observe((performance.now() - began) / 1000);
  requests.series(operation, outcome).add();
}

/** One form POST; `action` names what failed in error messages ("link", "unlink"). */
async function post(
  settings: StripeSettings,
  operation: Operation,
  options: { form: Record<string, string>; action: string; headers?: Record<string, string> },
): Promise<StripeReply> {
  let response: Response;
  let text: string;
  const began = performance.now();
  try {
    response = await fetch(`${settings.connectUrl}${OPERATIONS[operation]}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        ...options.headers,
      },
      body: new URLSearchParams(options.form),
      // A redirect is Stripe's answer, never followed: a 307 or 308 would post the platform's
      // secret key and the code again, to wherever its Location points.
      redirect: "manual",
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
    text = await response.text();
  } catch (error) {
    // Neither the request nor the error's text go anywhere: both may hold secrets.
    if (error instanceof DOMException && error.name === "TimeoutError") {
      meter(operation, began, "timeout");
      throw new GatewayTimeoutError(
        `Cannot ${options.action} Stripe: Stripe did not answer in time`,
      );
    }
    meter(operation, began, "unreachable");
    throw new BadGatewayError(`Cannot ${options.action} Stripe: Stripe cannot be reached`);
  }
  meter(operation, began, response.ok ? "ok" : "error");
  let body: Record<string, unknown> | null = null;
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed;
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

/**
 * Stripe's refusal as text, when the reply is a 400 with one of `codes`. Other refusals (401,
 * 403, 429: the platform's key, permissions or rate) are not the caller's doing and become 502.
 */
function refusalText(
  reply: StripeReply,
  sent: readonly string[],
  codes: readonly string[],
): string | null {
  if (reply.status !== 400 || !reply.body || !codes.includes(String(reply.body.error))) {
    return null;
  }
  const description = reply.body.error_description ?? reply.body.error;
  return typeof description === "string" && description ? scrub(description, sent) : null;
}

/** A bad, used or expired authorization code: the client's to fix (422). */
const CODE_REFUSALS = ["invalid_grant", "invalid_request", "unsupported_grant_type"];
/** "This application is not connected to the account": it is already gone. */
const NOT_CONNECTED = ["invalid_client"];
/** How Stripe's description of that refusal reads ("... is not connected to stripe account"). */
const NOT_CONNECTED_WORDS = /\bnot connected\b/i;

/**
 * Stripe's "not connected" refusal of a deauthorization, as text. Stripe answers it 401 (OAuth's
 * status for `invalid_client` when the platform authenticated with a header; Stripe's own
 * libraries are tested against it), as it answers a wrong platform key: only its words tell the
 * two apart. A 400 with `invalid_client` counts whatever its words.
 */
function notConnectedText(reply: StripeReply, sent: readonly string[]): string | null {
  const refused = refusalText(reply, sent, NOT_CONNECTED);
  if (refused || reply.status !== 401) return refused;
  const asBadRequest = refusalText({ ...reply, status: 400 }, sent, NOT_CONNECTED);
  return asBadRequest && NOT_CONNECTED_WORDS.test(asBadRequest) ? asBadRequest : null;
}

function text(value: unknown): string | null {
  return typeof value === "string" && value ? value : null;
}

/** The fields of a code exchange's answer that are stored as text. */
const STORED_TEXT = [
  "access_token",
  "refresh_token",
  "stripe_user_id",
  "stripe_publishable_key",
  "scope",
];

/**
 * Whether a stored field of Stripe's answer holds a NUL, which Postgres refuses in text: Stripe
 * failing (502), where the insert's refusal was answered as the client's 400 (until 2026-12-04).
 */
function holdsNul(body: Record<string, unknown>): boolean {
  return STORED_TEXT.some((field) => {
    const value = body[field];
    return typeof value === "string" && value.includes("\0");
  });
}

/** What a caller of `exchangeCode` learns on the way. */
export interface ExchangeOptions {
  /**
   * Called with the account a successful answer names, before the rest of it is checked: Stripe
   * has connected that account to the platform, so a caller that cannot store the answer (a key
   * missing or unstorable, like any later failure) must release it.
   */
  onAccount?: (accountId: string) => void;
}

/**
 * Exchanges an OAuth authorization code at `<connectUrl>/oauth/token`.
 *
 * @example
 * ```ts ignore
 * const tokens = await exchangeCode(settings, "ac_123", { onAccount: (id) => remember(id) });
 * console.log(tokens.publishableKey);
 * ```
 */
export async function exchangeCode(
  settings: StripeSettings,
  code: string,
  options: ExchangeOptions = {},
): Promise<StripeTokens> {
  const sent = [code, settings.secretKey];
  const reply = await post(settings, "oauth_token", {
    form: { client_secret: settings.secretKey, code, grant_type: "authorization_code" },
    action: "link",
  });
  if (reply.status !== 200 || !reply.body) {
    const refused = refusalText(reply, sent, CODE_REFUSALS);
    if (refused) {
      throw new UnprocessableError(`Cannot link Stripe: ${refused}`, { pointer: CODE_POINTER });
    }
    throw new BadGatewayError(`Cannot link Stripe: Stripe answered with status ${reply.status}`);
  }
  const body = reply.body;
  const accountId = text(body.stripe_user_id);
  if (accountId) options.onAccount?.(accountId);
  const accessToken = text(body.access_token);
  const publishableKey = text(body.stripe_publishable_key);
  if (!accessToken || !accountId || !publishableKey) {
    throw new BadGatewayError("Cannot link Stripe: Stripe's answer lacks the account's keys");
  }
  if (holdsNul(body)) {
    throw new BadGatewayError("Cannot link Stripe: Stripe's answer holds a NUL character");
  }
  return {
    accessToken,
    refreshToken: text(body.refresh_token),
    accountId,
    publishableKey,
    scope: text(body.scope),
    livemode: body.livemode === true,
  };
}

/** Stripe refused to deauthorize (e.g. the account is not connected any more). */
export class DeauthorizeRefusedError extends UnprocessableError {}

/**
 * Stripe answered, but turned the platform itself away (a 4xx such as 401 or 403: its key or
 * permissions). Still 502 to a client; asking again will not help until an operator acts.
 */
export class DeauthorizeRejectedError extends BadGatewayError {}

/** 4xx answers that may succeed later: timeouts and rate limits. */
const RETRYABLE = [408, 409, 425, 429];

/**
 * Disconnects the platform from an account at `<connectUrl>/oauth/deauthorize`. Throws
 * `DeauthorizeRefusedError` when Stripe refuses (not connected), `DeauthorizeRejectedError` when
 * it turns the platform away, other 502/504 errors when it cannot be asked or fails.
 *
 * @example
 * ```ts ignore
 * await deauthorize(settings, "acct_123");
 * ```
 */
export async function deauthorize(settings: StripeSettings, accountId: string): Promise<void> {
  const sent = [accountId, settings.secretKey];
  const reply = await post(settings, "deauthorize", {
    form: { client_id: settings.clientId, stripe_user_id: accountId },
    action: "unlink",
    headers: { Authorization: `Bearer ${settings.secretKey}` },
  });
  if (reply.status === 200) return;
  const refused = notConnectedText(reply, sent);
  if (refused) throw new DeauthorizeRefusedError(`Cannot unlink Stripe: ${refused}`);
  if (reply.status >= 400 && reply.status < 500 && !RETRYABLE.includes(reply.status)) {
    throw new DeauthorizeRejectedError(
      `Cannot unlink Stripe: Stripe answered with status ${reply.status}`,
    );
  }
  throw new BadGatewayError(`Cannot unlink Stripe: Stripe answered with status ${reply.status}`);
}
