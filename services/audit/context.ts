/**
 * What audit handlers work with, and the one rule they share: only admins read the log. Who the
 * caller is comes fresh from the catalog on every request, so a revoked admin flag counts at once.
 */
import type { Bus } from "@shared/bus.ts";
import type { Sql } from "@shared/db.ts";
import { ForbiddenError, UnauthorizedError } from "@shared/errors.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";
import { askAccess, isAdmin, requireLogin } from "@shared/access.ts";

export interface AuditContext {
  sql: Sql;
  bus: Bus;
  log: Logger;
}

/** 401 for anonymous callers (or a token of a deleted user), 403 for non-admins. */
export async function requireAdmin(ctx: AuditContext, actor: Actor | null): Promise<void> {
  if (!actor) throw new UnauthorizedError("Cannot continue: log in first");
  const { caller } = await askAccess(ctx.bus, actor);
  if (!isAdmin(requireLogin(caller))) {
    throw new ForbiddenError("Cannot continue: only admins may do this");
  }
}
