/**
 * The first admin: ADMIN_EMAIL + ADMIN_PASSWORD create or update a super admin at start; with
 * neither set and no admin yet, one is made with a random password shown once on stdout. An
 * existing account promoted, or given the configured password, loses every token issued before
 * (store/users.ts `upsertAdmin`); an admin already holding that password keeps theirs.
 */
import type { Config } from "@shared/config.ts";
import type { Sql } from "@shared/db.ts";
import { ConflictError } from "@shared/errors.ts";
import { changeWithFact } from "@shared/facts.ts";
import { type FactRelay } from "@shared/fact_relay.ts";
import { catalogFact, changedAttributes } from "./fact_payloads.ts";
import type { Logger } from "@shared/log.ts";
import {
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  userCreateAttributes,
} from "@shared/schemas/catalog.ts";
import { hashPassword, verifyPassword } from "./passwords.ts";
import { anyAdmin, lockFirstAdmin, upsertAdmin } from "./store/users.ts";

/**
 * Refuses, before the catalog starts, ADMIN_EMAIL or ADMIN_PASSWORD set alone, and a value that
 * sign-up would refuse (an email address; MIN_PASSWORD_LENGTH to MAX_PASSWORD_LENGTH characters):
 * `notanemail` / `x` made a super admin with a password every API path refuses. The password is
 * never quoted. Here, not in loadConfig: the catalog alone reads these, and the gateway loads no
 * payload schema.
 */
export function checkFirstAdminSettings(
  config: Pick<Config, "adminEmail" | "adminPassword">,
): void {
  const { adminEmail, adminPassword } = config;
  // One without the other was passed over without a word: ADMIN_EMAIL alone did nothing once an
  // admin existed, ADMIN_PASSWORD alone gave way to a generated password.
  if (adminEmail !== undefined && adminPassword === undefined) {
    throw new Error(
      "Cannot read ADMIN_EMAIL: it is set without ADMIN_PASSWORD; set both to choose the first " +
        "admin, or neither to have one made with a password shown once",
    );
  }
  if (adminPassword !== undefined && adminEmail === undefined) {
    throw new Error(
      "Cannot read ADMIN_PASSWORD: it is set without ADMIN_EMAIL; set both to choose the first " +
        "admin, or neither to have one made with a password shown once",
    );
  }
  if (adminEmail !== undefined && !userCreateAttributes.shape.email.safeParse(adminEmail).success) {
    throw new Error(`Cannot read ADMIN_EMAIL: "${adminEmail}" is not an email address`);
  }
  if (adminPassword !== undefined && adminPassword.length < MIN_PASSWORD_LENGTH) {
    throw new Error(
      `Cannot read ADMIN_PASSWORD: it has fewer than ${MIN_PASSWORD_LENGTH} characters, ` +
        "the least sign-up accepts",
    );
  }
  // Longer, no login takes it: the admin could never sign in.
  if (adminPassword !== undefined && adminPassword.length > MAX_PASSWORD_LENGTH) {
    throw new Error(
      `Cannot read ADMIN_PASSWORD: it has more than ${MAX_PASSWORD_LENGTH} characters, ` +
        "the most sign-up and login accept",
    );
  }
}

/** Writes `text` to stdout itself, past console.log (see where it is called). */
async function toStdout(text: string): Promise<void> {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length) bytes = bytes.subarray(await Deno.stdout.write(bytes));
}

export async function ensureFirstAdmin(
  options: { sql: Sql; relay: FactRelay; config: Config; log: Logger },
): Promise<void> {
  const { sql, relay, config, log } = options;
  const generated = !config.adminEmail || !config.adminPassword;
  if (generated && await anyAdmin(sql)) return;
  const email = config.adminEmail ?? "admin@example.com";
  const password = generated ? crypto.randomUUID().replaceAll("-", "") : config.adminPassword!;
  const passwordHash = await hashPassword(password, config.passwordIterations);
  const matches = (stored: string) => verifyPassword(password, stored);
  const makeAdmin = () =>
    changeWithFact(
      sql,
      relay,
      async (tx) => {
        // Another instance starting at the same time waits here, then finds what this one made.
        await lockFirstAdmin(tx);
        if (generated && await anyAdmin(tx)) return null;
        return await upsertAdmin(tx, email, { passwordHash, matches });
      },
      (made) =>
        made?.changed
          ? {
            ...catalogFact(null, "user", made.created ? "created" : "updated", made.row),
            changed: made.before ? changedAttributes("user", made.before, made.row) : [],
          }
          : null,
    );
  // A sign-up of that email committing meanwhile (unseen, then its row in the way of the insert)
  // stopped the start with a 409; once more, the account is found and made the admin.
  const made = await makeAdmin().catch((error) => {
    if (error instanceof ConflictError) return makeAdmin();
    throw error;
  });
  if (!made) return;
  if (generated) {
    // Shown once, on stdout only: never through the logger, nor console.log, which Deno's
    // OpenTelemetry ships as a log record (OTEL_DENO=true) to wherever telemetry goes.
    await toStdout(`First admin created: ${email} / ${password} (change this password)\n`);
  }
  const { row, created, changed } = made;
  const outcome = created ? "first admin created" : changed ? "admin updated" : "admin unchanged";
  log.info(outcome, { userId: String(row.id) });
}
