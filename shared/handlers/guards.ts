/**
 * The checks every handler makes before it acts, with one signature in every service: is there
 * a token (`requireActor`), a known user (`requireLogin`), an admin (`requireAdmin`); may trashed
 * rows be shown or purged; and the 404 of a row that is not there. They work on any caller that
 * carries the admin flags: the catalog's own (read from its tables) or the one other services get
 * from `catalog.internal.access` (shared/access.ts).
 *
 * @example
 * ```ts
 * import { requireAdmin } from "@shared/handlers/guards.ts";
 * const caller = { id: "1", email: "a@b.c", isAdmin: true, isSuperAdmin: false };
 * requireAdmin(caller).id; // "1"; null throws 401, a non-admin 403
 * ```
 */
import { BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError } from "../errors.ts";
import type { Actor } from "../schemas/http.ts";

/** What the admin checks read of a caller. */
export interface AdminFlags {
  isAdmin: boolean;
  isSuperAdmin: boolean;
}

export function isAdmin(caller: AdminFlags | null | undefined): boolean {
  return !!caller && (caller.isAdmin || caller.isSuperAdmin);
}

/** 401 without a token: checked before asking anyone who the caller is. */
export function requireActor(actor: Actor | null | undefined): Actor {
  if (!actor) throw new UnauthorizedError("Cannot continue: log in first");
  return actor;
}

/** 401 unless the caller is a known user. */
export function requireLogin<C>(caller: C | null | undefined): C {
  if (!caller) throw new UnauthorizedError("Cannot continue: log in first");
  return caller;
}

/**
 * 401 for nobody, 403 for users who are not admins. `what` names the action in the message
 * ("Cannot delete this code: only admins may"); without it the message is generic.
 */
export function requireAdmin<C extends AdminFlags>(caller: C | null | undefined, what?: string): C {
  const known = requireLogin(caller);
  if (isAdmin(known)) return known;
  throw new ForbiddenError(
    what ? `Cannot ${what}: only admins may` : "Cannot continue: only admins may do this",
  );
}

/**
 * `?get_trashed=true` shows soft-deleted rows, to admins only; so does `?permanent=true`, so an
 * admin can purge a row that is already soft-deleted.
 */
export function withTrashed(
  caller: AdminFlags | null | undefined,
  query: Record<string, string>,
): boolean {
  return trashedAsked(query) && isAdmin(caller);
}

/** Whether the query asks for soft-deleted rows (which `withTrashed` grants admins only). */
export function trashedAsked(query: Record<string, string>): boolean {
  return query.get_trashed === "true" || query.permanent === "true";
}

/**
 * `?permanent=true` deletes for good; only admins may ask (403 for others). Any value but `true`
 * or `false` is a 400: a client that meant a purge must not get a soft delete it did not ask for.
 */
export function permanentDelete(
  caller: AdminFlags | null | undefined,
  query: Record<string, string>,
): boolean {
  if (query.permanent !== undefined && query.permanent !== "true" && query.permanent !== "false") {
    throw new BadRequestError(
      `Cannot delete: permanent must be true or false, not ${JSON.stringify(query.permanent)}`,
      { parameter: "permanent" },
    );
  }
  if (query.permanent !== "true") return false;
  if (!isAdmin(caller)) throw new ForbiddenError("Cannot delete permanently: admins only");
  return true;
}

/** The 404 of a row that does not exist (or that the caller may not see). */
export function notFound(what: string, id: string | undefined): never {
  throw new NotFoundError(`Cannot find ${what} ${JSON.stringify(id ?? "")}`);
}
