/**
 * What audit handlers work with, and the one rule they share: only admins read the log. Who the
 * caller is comes from the catalog's answers as `ctx.access` keeps them (shared/access_source.ts:
 * a revoked admin flag counts once its fact arrives, at most its age limit later).
 */
import type { Bus } from "@shared/bus.ts";
import type { Sql } from "@shared/db.ts";
import type { Logger } from "@shared/log.ts";
import type { Actor } from "@shared/schemas/http.ts";
import type { Caller } from "@shared/access.ts";
import type { AccessSource } from "@shared/access_source.ts";
import { requireActor, requireAdmin } from "@shared/handlers/mod.ts";

export interface AuditContext {
  sql: Sql;
  bus: Bus;
  log: Logger;
  /** Who callers are, as the catalog answers (kept; see the file comment). */
  access: AccessSource;
  /** Activities `page[size]=0` may list at most (tests set a small one). */
  unpagedMax?: number;
}

/**
 * The caller, once the catalog says they are an admin: 401 for anonymous callers (asked before
 * the catalog) or a token of a deleted user, 403 for non-admins.
 */
export async function adminCaller(ctx: AuditContext, actor: Actor | null): Promise<Caller> {
  const { caller } = await ctx.access.ask(requireActor(actor));
  return requireAdmin(caller);
}
