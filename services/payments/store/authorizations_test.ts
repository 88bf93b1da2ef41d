import assert from "node:assert/strict";
import { openDatabase } from "@shared/db.ts";
import { testDatabase } from "@shared/testing.ts";
import { lockAccounts } from "./authorizations.ts";

Deno.test("[payments] lockAccounts waits briefly for the lock only, not for the row locks after it", async (t) => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "payments_lock", max: 3 });
  try {
    await sql`create table rows (id int primary key, n int not null)`;
    await sql`insert into rows values (1, 0)`;

    await t.step("the lock_timeout in force before is back once the lock is held", async () => {
      const after = await sql.begin(async (tx) => {
        await tx`set local lock_timeout = '3s'`;
        await lockAccounts(tx, { waitMs: 50, holdMs: 5_000 });
        const [{ setting }] = await tx`select current_setting('lock_timeout') as setting`;
        return setting;
      });
      assert.equal(after, "3s");
    });

    await t.step("a row lock held longer than waitMs is waited for, not a 55P03", async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => release = resolve);
      let locked!: () => void;
      const holding = new Promise<void>((resolve) => locked = resolve);
      // Another writer holds the row for longer than the accounts lock's short wait.
      const holder = sql.begin(async (tx) => {
        await tx`select id from rows where id = 1 for update`;
        locked();
        await released;
      });
      await holding;
      const timer = setTimeout(release, 400);
      try {
        await sql.begin(async (tx) => {
          await lockAccounts(tx, { waitMs: 50, holdMs: 5_000 });
          await tx`update rows set n = n + 1 where id = 1`;
        });
      } finally {
        clearTimeout(timer);
        release();
        await holder;
      }
      const [{ n }] = await sql`select n from rows where id = 1`;
      assert.equal(n, 1);
    });
  } finally {
    await sql.end();
  }
});
