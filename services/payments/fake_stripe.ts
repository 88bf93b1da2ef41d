/**
 * A local stand-in for Stripe Connect's OAuth endpoints, for tests and the Dredd hooks: never
 * the internet. It answers the way Stripe documents:
 * - `POST /oauth/token` (form: `client_secret`, `code`, `grant_type=authorization_code`): the
 *   keys of the account a code was granted for; a code works once. Unknown or spent codes get
 *   400 `invalid_grant` (whose description quotes the code, as Stripe's does), a wrong platform
 *   secret 401 `invalid_client`.
 * - `POST /oauth/deauthorize` (form: `client_id`, `stripe_user_id`; the secret key as bearer):
 *   200 `{stripe_user_id}` for a connected account, 401 `invalid_client` otherwise ("This
 *   application is not connected to stripe account ..."; Stripe's own libraries are tested
 *   against that status, and OAuth answers a client that authenticated with a header so).
 * Codes from `grant({ delayMs })` answer late (for timeouts), those from `grant({ answerAt })` at
 * a given time (just before a request's deadline, whenever they were asked), those from
 * `grant({ until })` once the test lets them (it breaks something meanwhile), and so does every
 * deauthorization while `deauthorizeDelayMs` is set; every call is recorded.
 *
 * @example
 * ```ts ignore
 * await using stripe = await startFakeStripe({ secretKey: "sk_test_x", clientId: "ca_x" });
 * const grant = stripe.grant();
 * // point STRIPE_CONNECT_URL at stripe.url, then POST grant.code as stripe-auth-code
 * ```
 */

export interface FakeStripeOptions {
  secretKey: string;
  clientId: string;
  /** Fixed port (Dredd hooks); 0 or unset picks a free one. */
  port?: number;
}

/** One authorization code and what exchanging it yields (all of it secret but the key). */
export interface FakeGrant {
  code: string;
  accessToken: string;
  refreshToken: string;
  accountId: string;
  publishableKey: string;
  /** Milliseconds the exchange waits before answering. */
  delayMs: number;
  /** Epoch ms the exchange answers at (instead of `delayMs` after it was asked), if set. */
  answerAt?: number;
  /** The exchange answers once this has settled too, if set. */
  until?: Promise<unknown>;
  /** The exchange's `livemode`. */
  livemode: boolean;
}

export interface FakeStripeCall {
  path: string;
  form: Record<string, string>;
  authorization: string | null;
}

/** What `grant` may fix of a new code; the rest is random. */
export interface GrantOptions {
  /** Reuses an account (one account may serve several events). */
  accountId?: string;
  delayMs?: number;
  answerAt?: number;
  /**
   * Holds the exchange's answer until it settles: a test that breaks something while the exchange
   * is under way then does not race a fixed delay (a loaded machine took longer to break it).
   */
  until?: Promise<unknown>;
  code?: string;
  /** Whether the connection includes live mode (the exchange's `livemode`; default false). */
  livemode?: boolean;
}

export interface FakeStripe extends AsyncDisposable {
  url: string;
  port: number;
  calls: FakeStripeCall[];
  /** Account ids the platform is connected to right now. */
  connected: Set<string>;
  /** Milliseconds each deauthorization waits before answering (0: at once). */
  deauthorizeDelayMs: number;
  /** While true, every deauthorization answers 503 (Stripe failing) and changes nothing. */
  failDeauthorize: boolean;
  /** A new code; `accountId` reuses an account (one account may serve several events). */
  grant(options?: GrantOptions): FakeGrant;
  stop(): Promise<void>;
}

function random(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Resolves once `signal` aborts (the fake stops). */
function stopping(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** What the fake knows between calls. */
interface FakeState {
  options: FakeStripeOptions;
  grants: Map<string, FakeGrant>;
  spent: Set<string>;
  connected: Set<string>;
  /** Aborted on stop: delayed answers end at once. */
  closing: AbortController;
  /** The fake as handed out, whose `deauthorizeDelayMs` tests change. */
  fake?: FakeStripe;
}

/** Why Stripe would refuse exchanging `form.code`, or undefined when it would not. */
function tokenRefusal(state: FakeState, form: Record<string, string>): Response | undefined {
  if (form.client_secret !== state.options.secretKey) {
    return json(401, { error: "invalid_client", error_description: "No such api key." });
  }
  if (form.grant_type !== "authorization_code") {
    return json(400, {
      error: "unsupported_grant_type",
      error_description: `Unsupported grant type: ${form.grant_type}`,
    });
  }
  const grant = state.grants.get(form.code ?? "");
  if (!grant) {
    return json(400, {
      error: "invalid_grant",
      error_description: `Authorization code does not exist: ${form.code}`,
    });
  }
  if (state.spent.has(grant.code)) {
    return json(400, {
      error: "invalid_grant",
      error_description: `This authorization code has already been used. ` +
        `All tokens issued with this code have been revoked.`,
    });
  }
  return undefined;
}

async function token(state: FakeState, form: Record<string, string>): Promise<Response> {
  const refused = tokenRefusal(state, form);
  if (refused) return refused;
  const grant = state.grants.get(form.code)!;
  const delayMs = grant.answerAt === undefined ? grant.delayMs : grant.answerAt - Date.now();
  if (delayMs > 0) await wait(delayMs, state.closing.signal);
  if (grant.until) {
    await Promise.race([grant.until.catch(() => {}), stopping(state.closing.signal)]);
  }
  state.spent.add(grant.code);
  state.connected.add(grant.accountId);
  return json(200, {
    access_token: grant.accessToken,
    refresh_token: grant.refreshToken,
    token_type: "bearer",
    stripe_publishable_key: grant.publishableKey,
    stripe_user_id: grant.accountId,
    scope: "read_write",
    livemode: grant.livemode,
  });
}

async function deauthorize(
  state: FakeState,
  form: Record<string, string>,
  authorization: string | null,
): Promise<Response> {
  const delayMs = state.fake?.deauthorizeDelayMs;
  if (delayMs) await wait(delayMs, state.closing.signal);
  if (state.fake?.failDeauthorize) {
    return json(503, { error: "server_error", error_description: "Try again later." });
  }
  const { secretKey, clientId } = state.options;
  if (authorization !== `Bearer ${secretKey}` || form.client_id !== clientId) {
    return json(401, { error: "invalid_client", error_description: "No such application." });
  }
  const account = form.stripe_user_id ?? "";
  if (!state.connected.delete(account)) {
    return json(401, {
      error: "invalid_client",
      error_description:
        `This application is not connected to stripe account ${account}, or that account does not exist.`,
    });
  }
  return json(200, { stripe_user_id: account });
}

function newGrant(state: FakeState, options: GrantOptions): FakeGrant {
  const grant: FakeGrant = {
    code: options.code ?? `ac_${random()}`,
    accessToken: `sk_test_${random()}`,
    refreshToken: `rt_${random()}`,
    accountId: options.accountId ?? `acct_${random().slice(0, 16)}`,
    publishableKey: `pk_test_${random()}`,
    delayMs: options.delayMs ?? 0,
    answerAt: options.answerAt,
    until: options.until,
    livemode: options.livemode ?? false,
  };
  state.grants.set(grant.code, grant);
  state.spent.delete(grant.code);
  return grant;
}

export function startFakeStripe(options: FakeStripeOptions): Promise<FakeStripe> {
  const state: FakeState = {
    options,
    grants: new Map(),
    spent: new Set(),
    connected: new Set(),
    closing: new AbortController(),
  };
  const calls: FakeStripeCall[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    signal: state.closing.signal,
    onListen: () => {},
  }, async (request) => {
    const path = new URL(request.url).pathname;
    const form = Object.fromEntries(new URLSearchParams(await request.text()));
    const authorization = request.headers.get("authorization");
    calls.push({ path, form, authorization });
    if (request.method !== "POST") return json(405, { error: "method_not_allowed" });
    if (path === "/oauth/token") return await token(state, form);
    if (path === "/oauth/deauthorize") return await deauthorize(state, form, authorization);
    return json(404, { error: "not_found", error_description: "Unrecognized request URL" });
  });
  const port = server.addr.port;
  async function stop() {
    if (!state.closing.signal.aborted) state.closing.abort();
    await server.finished;
  }
  state.fake = {
    url: `http://127.0.0.1:${port}`,
    port,
    calls,
    connected: state.connected,
    deauthorizeDelayMs: 0,
    failDeauthorize: false,
    grant: (grantOptions = {}) => newGrant(state, grantOptions),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  return Promise.resolve(state.fake);
}
