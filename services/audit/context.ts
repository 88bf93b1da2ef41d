/**
 * What audit handlers work with, and the one rule they share: only admins read the log. Who the
 * caller is comes fresh from the catalog on every request, so a revoked admin flag counts at once.
 */
import type { Bus } from "@shared/bus.ts";
import type { Sql } from "@shared/db.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";
import { askAccess, type Caller } from "@shared/access.ts";
import { requireActor, requireAdmin } from "@shared/handlers/mod.ts";

export interface AuditContext {
  sql: Sql;
  bus: Bus;
  log: Logger;
}

/**
 * The caller, once the catalog says they are an admin: 401 for anonymous callers (asked before
 * the catalog) or a token of a deleted user, 403 for non-admins.
 */
export async function adminCaller(ctx: AuditContext, actor: Actor | null): Promise<Caller> {
  const { caller } = await askAccess(ctx.bus, requireActor(actor));
  return requireAdmin(caller);
}
