/**
 * Who asks is answered before what is wrong with the request: a token that no longer counts (its
 * user deleted, or older than the user's last password change) gets its 401 on every path, even
 * where the handler refused the request for another reason first (a bad query read before the
 * caller, a malformed body, a `?permanent=` value). Only refusals are checked again, so a
 * request that succeeds costs nothing more; where the check itself cannot be made (the catalog
 * unreachable) the handler's own refusal stands.
 *
 * @example
 * ```ts ignore
 * const routes = callerFirst(bindOperations(contract, handlers), authenticateWith(access));
 * ```
 */
import type { Handler, Route } from "./bus.ts";
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
      const stale = await authenticate(req.actor).then(
        () => undefined,
        (refusal) => refusal instanceof UnauthorizedError ? refusal : undefined,
      );
      throw stale ?? error;
    }
  };
}
