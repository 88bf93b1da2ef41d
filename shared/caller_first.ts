/**
 * Who asks is answered before what is wrong with the request: a token that no longer counts (its
 * user deleted, or older than the user's last password change) gets its 401 on every path, even
 * where the handler refused the request for another reason first (a bad query read before the
 * caller, a malformed body, a `?permanent=` value). Only refusals are checked again, so a
 * request that succeeds costs nothing more (and a refusal that came after the handler asked who
 * the caller is costs no round trip: the answer is kept, shared/access_source.ts); where the
 * check cannot be made, or not within `CHECK_WITHIN_MS` (the catalog away or hung), the
 * handler's own refusal stands: a fast 400 never becomes a 504.
 *
 * @example
 * ```ts ignore
 * const routes = callerFirst(bindOperations(contract, handlers), authenticateWith(access));
 * ```
 */
import type { Handler, Route } from "./bus_endpoints.ts";
import { ApiError, UnauthorizedError } from "./errors.ts";
import type { Actor, HttpReply, HttpRequest } from "./schemas/http.ts";

/** Refuses (401) an actor whose token no longer counts; resolves otherwise. */
export type Authenticate = (actor: Actor) => Promise<void>;

/** Each HTTP route's refusals (4xx but 401) of a signed-in caller become 401 when `authenticate` says so. */
export function callerFirst(routes: Route[], authenticate: Authenticate): Route[] {
  return routes.map(({ endpoint, handler }) => ({
    endpoint,
    handler: endpoint.kind === "http" ? checkingRefusals(handler, authenticate) : handler,
  }));
}

/** How long a refusal waits for the check of its caller before it is given as it is. */
const CHECK_WITHIN_MS = 1_000;

function isRefusal(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status >= 400 && error.status < 500 &&
    error.status !== 401;
}

function checkingRefusals(
  handler: Handler<HttpRequest, HttpReply>,
  authenticate: Authenticate,
): Handler<HttpRequest, HttpReply> {
  return async (req, msg) => {
    try {
      return await handler(req, msg);
    } catch (error) {
      if (!req.actor || !isRefusal(error)) throw error;
      throw await staleTokenRefusal(authenticate, req.actor) ?? error;
    }
  };
}

/** The 401 of an actor whose token no longer counts; undefined if it counts or no answer came. */
async function staleTokenRefusal(
  authenticate: Authenticate,
  actor: Actor,
): Promise<UnauthorizedError | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), CHECK_WITHIN_MS);
  });
  const checked = authenticate(actor).then(
    () => undefined,
    (refusal) => refusal instanceof UnauthorizedError ? refusal : undefined,
  );
  try {
    return await Promise.race([checked, late]);
  } finally {
    clearTimeout(timer);
  }
}
