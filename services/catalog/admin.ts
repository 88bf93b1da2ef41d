/**
 * The first admin: ADMIN_EMAIL + ADMIN_PASSWORD create or update a super admin at start; with
 * neither set and no admin yet, one is made with a random password shown once on stdout.
 */
import type { Config } from "@shared/config.ts";
import type { Sql } from "@shared/db.ts";
import { changeWithFact, type FactRelay } from "@shared/facts.ts";
import { catalogFact } from "./fact_payloads.ts";
import type { Logger } from "@shared/log.ts";
import { hashPassword } from "./passwords.ts";
import { anyAdmin, upsertAdmin } from "./store/users.ts";

export async function ensureFirstAdmin(
  options: { sql: Sql; relay: FactRelay; config: Config; log: Logger },
): Promise<void> {
  const { sql, relay, config, log } = options;
  let email = config.adminEmail;
  let password = config.adminPassword;
  if (!email || !password) {
    if (await anyAdmin(sql)) return;
    email ??= "admin@example.com";
    password = crypto.randomUUID().replaceAll("-", "");
    // Shown once, on stdout only (never through the logger, which may be shipped elsewhere).
    console.log(`First admin created: ${email} / ${password} (change this password)`);
  }
  const hash = await hashPassword(password, config.passwordIterations);
  const { row, created } = await changeWithFact(
    sql,
    relay,
    (tx) => upsertAdmin(tx, email, hash),
    ({ row, created }) => catalogFact(null, "user", created ? "created" : "updated", row),
  );
  log.info(created ? "first admin created" : "admin updated", { userId: String(row.id) });
}
