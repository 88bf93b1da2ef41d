import assert from "node:assert/strict";
import { createLogger } from "@shared/log.ts";
import { startTestSystem, type TestSystem } from "@testing/system.ts";
import { holdTableLock, untilWaitingForLocks } from "@testing/table_lock.ts";
import { ensureFirstAdmin } from "./admin.ts";

const quiet = createLogger("catalog-test", "error");

/** Two starts of the catalog at once, both reaching the users table together, as two processes. */
async function twoStarts(system: TestSystem, admin: { email?: string; password?: string }) {
  const start = () =>
    ensureFirstAdmin({
      sql: system.sql,
      relay: system.catalog.relay,
      config: { ...system.config, adminEmail: admin.email, adminPassword: admin.password },
      log: quiet,
    });
  await using lock = await holdTableLock(system.databaseUrl, "catalog.users");
  const starts = Promise.allSettled([start(), start()]);
  // Both held at the table before it is let go (after a fixed pause, a start slower than it came
  // only after the release, and the two never met).
  await untilWaitingForLocks(system.sql, { count: 2, what: "both starts" });
  await lock.release();
  return (await starts).map((o) => o.status === "rejected" ? String(o.reason) : o.status);
}

async function logsIn(system: TestSystem, email: string, password: string) {
  const reply = await system.call("POST", "/v1/auth/login", {
    body: { email, password },
    headers: { "Content-Type": "application/json" },
  });
  return reply.status;
}

// Found by a review: each instance makes the first admin at start, and two instances started
// together both found no account and both inserted one; the second stopped on the taken email.
Deno.test("[catalog] two instances starting at once with the same ADMIN_EMAIL both start", async () => {
  await using system = await startTestSystem();
  const email = `ops-${crypto.randomUUID().slice(0, 8)}@example.test`;
  const password = "the operator's own password";
  assert.deepEqual(await twoStarts(system, { email, password }), ["fulfilled", "fulfilled"]);
  const rows = await system.sql`select id from users where lower(email) = lower(${email})`;
  assert.equal(rows.length, 1);
  assert.equal(await logsIn(system, email, password), 200);
});

// Without ADMIN_EMAIL and ADMIN_PASSWORD, each instance made a password and showed it; the second
// either stopped on the taken email or replaced the password the first had shown.
Deno.test("[catalog] two instances starting at once with no admin show one password, and it works", async () => {
  await using system = await startTestSystem();
  // No super admin yet, as in a new database.
  await system.sql`update users set is_admin = false, is_super_admin = false`;
  let out = "";
  const write = Deno.stdout.write;
  Deno.stdout.write = (bytes: Uint8Array) => {
    out += new TextDecoder().decode(bytes);
    return Promise.resolve(bytes.length);
  };
  let outcomes: string[];
  try {
    outcomes = await twoStarts(system, {});
  } finally {
    Deno.stdout.write = write;
  }
  assert.deepEqual(outcomes, ["fulfilled", "fulfilled"]);
  const shown = [...out.matchAll(/First admin created: (\S+) \/ (\S+)/g)];
  assert.equal(shown.length, 1, out);
  const [, email, password] = shown[0];
  assert.equal(await logsIn(system, email, password), 200);
});

// Found by a review: a sign-up of exactly ADMIN_EMAIL, written but not yet committed when the
// catalog made its admin, was not seen by it; its insert then waited on the sign-up's and failed
// on the taken email, and the catalog stopped at start with a 409.
Deno.test("[catalog] a sign-up of ADMIN_EMAIL committing while the catalog starts: the account is made the admin", async () => {
  await using system = await startTestSystem();
  const email = `ops-${crypto.randomUUID().slice(0, 8)}@example.test`;
  const password = "the operator's own password";
  const signUp = await system.sql.reserve();
  try {
    await signUp`begin`;
    await signUp`insert into users (email, password_hash) values (${email}, 'not a hash')`;
    const start = ensureFirstAdmin({
      sql: system.sql,
      relay: system.catalog.relay,
      config: { ...system.config, adminEmail: email, adminPassword: password },
      log: quiet,
    }).then(() => "fulfilled", (error) => String(error));
    await untilWaitingForLocks(system.sql, { count: 1, what: "the start" });
    await signUp`commit`;
    assert.equal(await start, "fulfilled");
  } finally {
    signUp.release();
  }
  const rows = await system
    .sql`select is_super_admin from users where lower(email) = lower(${email})`;
  assert.deepEqual(rows.map((r) => r.is_super_admin), [true]);
  assert.equal(await logsIn(system, email, password), 200);
});
