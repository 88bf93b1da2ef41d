import assert from "node:assert/strict";
import postgres from "postgres";
import { isDatabaseOutage, migrate, openDatabase, transaction, translateDbError } from "./db.ts";
import { BadRequestError, ConflictError, ServiceUnavailableError } from "./errors.ts";
import { testDatabase } from "./testing.ts";
import { isTransientFailure } from "./transient.ts";
import { startPostgresServer } from "@testing/postgres_server.ts";

/** A folder of migration files, removed when disposed. */
async function migrationsDir(files: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: "migrations-test-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return {
    url: new URL(`file://${dir}/`),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("[db] openDatabase creates a missing database and pins the schema", async () => {
  await using db = await testDatabase();
  const url = new URL(db.url);
  url.pathname = `${url.pathname}_fresh`;
  const sql = await openDatabase(url.toString(), { schema: "demo" });
  try {
    const [row] = await sql`select current_schema() as schema, current_database() as name`;
    assert.equal(row.schema, "demo");
    assert.equal(row.name, url.pathname.slice(1));
  } finally {
    await sql.end();
    const admin = await openDatabase(db.url, { schema: "public" });
    await admin`drop database ${admin(url.pathname.slice(1))} with (force)`;
    await admin.end();
  }
});

Deno.test("[db] migrations apply once, in order, even when instances start together", async () => {
  await using db = await testDatabase();
  await using migrations = await migrationsDir({
    "0001_things.sql": "create table things (id serial primary key, name text not null);",
    "0002_more.sql": "alter table things add column size int not null default 0;",
    "notes.txt": "ignored",
  });
  const pools = await Promise.all(
    [1, 2, 3].map(() => openDatabase(db.url, { schema: "demo", max: 2 })),
  );
  try {
    const dir = migrations.url;
    const results = await Promise.all(pools.map((sql) => migrate(sql, { schema: "demo", dir })));
    assert.deepEqual(results.flat().sort(), ["0001_things.sql", "0002_more.sql"]);
    assert.deepEqual(await migrate(pools[0], { schema: "demo", dir }), []);
    const cols = await pools[0]`select column_name from information_schema.columns
      where table_schema = 'demo' and table_name = 'things' order by ordinal_position`;
    assert.deepEqual(cols.map((c) => c.column_name), ["id", "name", "size"]);
  } finally {
    await Promise.all(pools.map((sql) => sql.end()));
  }
});

Deno.test("[db] a failing migration applies nothing of itself", async () => {
  await using db = await testDatabase();
  await using migrations = await migrationsDir({
    "0001_bad.sql": "create table half (id int); select 1/0;",
  });
  const sql = await openDatabase(db.url, { schema: "demo" });
  try {
    await assert.rejects(migrate(sql, { schema: "demo", dir: migrations.url }));
    const [row] = await sql`select to_regclass('demo.half') as found`;
    assert.equal(row.found, null);
  } finally {
    await sql.end();
  }
});

Deno.test("[db] database errors become API errors", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "demo" });
  try {
    await sql`create table u (email text unique)`;
    await sql`insert into u values ('a')`;
    const duplicate = await sql`insert into u values ('a')`.catch((e) => e);
    assert.ok(translateDbError(duplicate, { conflict: "taken" }) instanceof ConflictError);
    const badInt = await sql`select ${"abc"}::int`.catch((e) => e);
    assert.ok(translateDbError(badInt) instanceof BadRequestError);
    const other = new Error("x");
    assert.equal(translateDbError(other), other);
  } finally {
    await sql.end();
  }
});

Deno.test("[db] a database host whose name does not resolve is an outage (503), not a 500", async () => {
  // `.invalid` never resolves (RFC 2606): what a stopped container's name gives, or DNS away.
  const sql = postgres("postgres://postgres@db.invalid:5432/none", { max: 1, connect_timeout: 5 });
  try {
    const error = await sql`select 1`.catch((e) => e);
    assert.ok(isDatabaseOutage(error), String(error));
    assert.ok(translateDbError(error) instanceof ServiceUnavailableError, String(error));
  } finally {
    await sql.end({ timeout: 1 });
  }
});

Deno.test({
  name:
    "[db] a database refusing connections for being full is a 503 that says busy, not unreachable",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using pg = await startPostgresServer({
      max_connections: "3",
      superuser_reserved_connections: "0",
    });
    // Other clients hold every connection the server gives.
    const hog = postgres(pg.url.replace(/open_event$/, "postgres"), { max: 3, onnotice: () => {} });
    const late = postgres(pg.url.replace(/open_event$/, "postgres"), {
      max: 1,
      onnotice: () => {},
    });
    try {
      await Promise.all([1, 2, 3].map(() => hog`select pg_sleep(0.1)`));
      const error = await late`select 1`.catch((e) => e);
      assert.equal(error?.code, "53300", String(error));
      const translated = translateDbError(error);
      assert.ok(translated instanceof ServiceUnavailableError, String(translated));
      assert.match(translated.message, /at capacity/);
      assert.doesNotMatch(translated.message, /reach/);
      // Retried as an outage still: by consumers, and by the release queue of payments.
      assert.ok(isDatabaseOutage(error));
      assert.ok(isTransientFailure(translated));
    } finally {
      await late.end({ timeout: 0 });
      await hog.end({ timeout: 0 });
    }
  },
});

Deno.test("[db] several processes may open a new database and schema at the same moment", async () => {
  await using db = await testDatabase();
  const url = new URL(db.url);
  url.pathname = `${url.pathname}_race`;
  const opened = await Promise.allSettled(
    Array.from({ length: 6 }, () => openDatabase(url.toString(), { schema: "same", max: 1 })),
  );
  const pools = opened.flatMap((result) => result.status === "fulfilled" ? [result.value] : []);
  try {
    assert.deepEqual(opened.filter((result) => result.status === "rejected"), []);
    // One database, one schema, and every pool works in it.
    for (const sql of pools) {
      const [{ schema }] = await sql`select current_schema() as schema`;
      assert.equal(schema, "same");
    }
    await pools[0]`create table marks (pool int not null)`;
    await Promise.all(pools.map((sql, i) => sql`insert into marks values (${i})`));
    const marks = await pools[5]`select pool from same.marks order by pool`;
    assert.deepEqual(marks.map((row) => row.pool), [0, 1, 2, 3, 4, 5]);
  } finally {
    await Promise.all(pools.map((sql) => sql.end()));
    const admin = await openDatabase(db.url, { schema: "public" });
    try {
      await admin`drop database if exists ${admin(url.pathname.slice(1))} with (force)`;
    } finally {
      await admin.end();
    }
  }
});

/** `promise`, or a rejection after `ms`: a pool that never answers must fail the test, not hang it. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("[db] a connection lost inside a transaction fails the transaction, not the process", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "demo", max: 1 });
  const killer = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const lost = transaction(sql, async (tx) => {
      const [{ pid }] = await tx`select pg_backend_pid() as pid`;
      await killer`select pg_terminate_backend(${pid})`;
      await tx`select 1`;
    });
    await assert.rejects(within(5000, "the transaction", lost), (error) => isDatabaseOutage(error));
    // postgres.js 3.4.9 then wrote its rollback to the closed socket: an uncaught TypeError from
    // a setImmediate callback that ended the process, or a connection that never answered again
    // (vendor/postgres/README.md).
    for (let i = 0; i < 3; i++) {
      const [{ ok }] = await within(5000, "the pool after the loss", sql`select true as ok`);
      assert.equal(ok, true);
    }
  } finally {
    await killer.end();
    await within(5000, "closing the pool", sql.end({ timeout: 1 })).catch(() => {});
  }
});

Deno.test("[db] a transaction hook that throws neither replaces the error nor stops the answer", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "hooks" });
  try {
    const failing = {
      afterRollback: () => {
        throw new Error("the hook failed");
      },
    };
    await assert.rejects(
      transaction(sql, () => Promise.reject(new Error("the change failed")), failing),
      /the change failed/,
    );
    const throwing = {
      afterCommit: () => {
        throw new Error("the hook failed");
      },
    };
    assert.equal(
      await transaction(sql, async (tx) => (await tx`select 1 as one`)[0].one, throwing),
      1,
    );
  } finally {
    await sql.end();
  }
});

Deno.test("[db] a transaction whose BEGIN fills a busy connection's pipeline still runs", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "demo", max: 2 });
  try {
    await sql`create table marks (id int)`;
    await Promise.all([sql`select 1`, sql`select 1`]); // both connections open
    // Both connections busy with a slow statement, then 99 more queued behind each: the BEGIN
    // that follows is the 100th statement pipelined on its connection (postgres.js's
    // max_pipeline). postgres.js 3.4.9 then skipped reserving the connection for the
    // transaction: UNSAFE_TRANSACTION, a 500, and a backend left inside a transaction that
    // other statements of the pool then ran in (porsager/postgres#823, #1189).
    // (A statement is sent when awaited or executed: `execute()` sends each in this order.)
    const busy = [sql`select pg_sleep(0.2)`.execute(), sql`select pg_sleep(0.2)`.execute()];
    for (let i = 0; i < 2 * 99; i++) busy.push(sql`select 1`.execute());
    const written = transaction(sql, async (tx) => {
      await tx`insert into marks values (1)`;
    });
    await within(5000, "the transaction", written);
    await within(5000, "the queued statements", Promise.all(busy));
    const states = await sql`select state from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid()
        and state like 'idle in transaction%'`;
    assert.equal(states.length, 0, "no connection is left inside a transaction");
    const [{ count }] = await sql`select count(*)::int as count from marks`;
    assert.equal(count, 1);
  } finally {
    await within(5000, "closing the pool", sql.end({ timeout: 1 })).catch(() => {});
  }
});
