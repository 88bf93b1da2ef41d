import assert from "node:assert/strict";
import postgres from "postgres";
import { openDatabase, transaction } from "./db.ts";
import { databaseProblem } from "./db_health.ts";
import { freePort } from "./net.ts";
import { recordingLogger, testDatabase } from "./testing.ts";
import { startPostgresServer } from "@testing/postgres_server.ts";
import { eventually } from "@testing/eventually.ts";
import { setDatabaseReadOnly } from "@testing/read_only.ts";

/** Clients holding every connection the server at `url` still gives, as other programs would. */
async function takeEveryConnection(url: string): Promise<postgres.Sql[]> {
  const hogs: postgres.Sql[] = [];
  for (let i = 0; i < 20; i++) {
    const hog = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await hog`select 1`;
      hogs.push(hog);
    } catch {
      await hog.end({ timeout: 0 });
      break;
    }
  }
  return hogs;
}

Deno.test("[db_health] databaseProblem says whether Postgres answers", async (t) => {
  await t.step("a database that answers has no problem", async () => {
    await using db = await testDatabase();
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      assert.equal(await databaseProblem(sql), undefined);
    } finally {
      await sql.end();
    }
  });
  await t.step("a database that takes no writes is read-only, until it takes them", async () => {
    await using db = await testDatabase();
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await setDatabaseReadOnly(db.url, true);
      await eventually(
        async () => await databaseProblem(sql) === "database read-only",
        5_000,
        "read-only reported",
      );
      await setDatabaseReadOnly(db.url, false);
      await eventually(async () => await databaseProblem(sql) === undefined, 5_000, "healthy");
    } finally {
      await sql.end();
    }
  });
  // A review: a session keeps the read-only setting it started with, so the pool's may refuse
  // writes while a new connection, the probe's, takes them.
  await t.step(
    "a pool whose sessions refuse writes is read-only, whatever a new one says",
    async () => {
      await using db = await testDatabase();
      const sql = await openDatabase(db.url, { schema: "demo", max: 1, log: recordingLogger() });
      try {
        await sql`create table things (id int)`;
        await setDatabaseReadOnly(db.url, true);
        await eventually(() => sql`select 1`.then(() => true, () => false), 5_000, "reconnected");
        await setDatabaseReadOnly(db.url, false, { endSessions: false });
        await assert.rejects(transaction(sql, (tx) => tx`insert into things values (1)`));
        await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the probe's last answer
        assert.equal(await databaseProblem(sql), "database read-only");
      } finally {
        await sql.end();
      }
    },
  );
  await t.step("nothing listening: unreachable, within the probe's half second", async () => {
    const sql = postgres(`postgres://postgres@127.0.0.1:${freePort()}/none`, {
      max: 1,
      connect_timeout: 5,
      onnotice: () => {},
    });
    try {
      const began = Date.now();
      assert.equal(await databaseProblem(sql), "database unreachable");
      assert.ok(Date.now() - began < 1_000, `${Date.now() - began} ms`);
      // Asked again within the second: the same probe answers, none is started.
      assert.equal(databaseProblem(sql), databaseProblem(sql));
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
  await t.step(
    "a peer that accepts and never answers (a hung host): unreachable at 500 ms",
    async () => {
      const port = freePort();
      const listener = Deno.listen({ hostname: "127.0.0.1", port });
      const held: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const conn of listener) held.push(conn);
      })();
      const sql = postgres(`postgres://postgres@127.0.0.1:${port}/none`, {
        max: 1,
        connect_timeout: 2,
        onnotice: () => {},
      });
      try {
        const began = Date.now();
        assert.equal(await databaseProblem(sql), "database unreachable");
        const took = Date.now() - began;
        // The probe's own 500 ms cut, not the pool's 2 s connect_timeout (nor at once).
        assert.ok(took >= 450 && took < 1_500, `${took} ms`);
      } finally {
        listener.close();
        for (const conn of held) conn.close();
        await accepting.catch(() => {});
        await sql.end({ timeout: 0 }).catch(() => {});
      }
    },
  );
});

Deno.test("[db_health] a pool busy with slow queries is no outage: the probe has its own connection", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "health", max: 1 });
  const watcher = postgres(db.url, { max: 1, onnotice: () => {} });
  // The pool's one connection is held for 2 s, as slow requests behind a lock hold them.
  // (A postgres.js query runs once it is awaited or then-ed: `then` starts it now.)
  let slowDone = false;
  const slow = sql`select pg_sleep(2)`.then(() => void (slowDone = true));
  try {
    // Probed only once Postgres runs the sleep on the pool's connection (a fixed 100 ms pause
    // took that on trust).
    await eventually(
      async () =>
        (await watcher`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and application_name like 'health %'
            and state = 'active' and query = 'select pg_sleep(2)'`)[0].n === 1,
      1_500,
      "the pool's connection running the sleep",
      10,
    );
    const began = Date.now();
    assert.equal(await databaseProblem(sql), undefined);
    // Answered while the slow query still holds the pool's connection, well before its 2 s.
    assert.equal(slowDone, false, "the probe did not wait for the pool's connection");
    assert.ok(Date.now() - began < 1_500, `${Date.now() - began} ms`);
    await slow;
  } finally {
    // Ended early when an assertion failed: that failure is the one to report.
    slow.catch(() => {});
    await watcher.end();
    await sql.end({ timeout: 1 });
  }
});

Deno.test({
  name: "[db_health] a database at max_connections is full, not unreachable: the pool still works",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using pg = await startPostgresServer({
      max_connections: "8",
      superuser_reserved_connections: "0",
    });
    const sql = await openDatabase(pg.url, { schema: "health", max: 2 });
    const hogs: postgres.Sql[] = [];
    try {
      await Promise.all([sql`select 1`, sql`select 1`]);
      // Every other connection taken, as by other clients.
      hogs.push(...await takeEveryConnection(pg.url));
      assert.equal((await sql`select 1 as one`)[0].one, 1, "the pool still answers");
      assert.equal(await databaseProblem(sql), undefined);
    } finally {
      for (const hog of hogs) await hog.end({ timeout: 0 });
      await sql.end({ timeout: 1 });
    }
  },
});

Deno.test({
  name: "[db_health] a full database whose pool lost its connections too is a problem: full",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using pg = await startPostgresServer({
      max_connections: "5",
      superuser_reserved_connections: "0",
    });
    const sql = await openDatabase(pg.url, { schema: "health", max: 2 });
    const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    const hogs: postgres.Sql[] = [];
    try {
      await sql`select 1`;
      // The pool's connections end (a restart, an idle timeout), and others take every slot.
      await admin`select pg_terminate_backend(pid) from pg_stat_activity
        where application_name like 'health %'`;
      hogs.push(...await takeEveryConnection(pg.url));
      await assert.rejects(sql`select 1`, "the pool cannot connect either");
      assert.equal(await databaseProblem(sql), "database full");
    } finally {
      for (const hog of hogs) await hog.end({ timeout: 0 });
      await admin.end({ timeout: 0 });
      await sql.end({ timeout: 1 });
    }
  },
});
