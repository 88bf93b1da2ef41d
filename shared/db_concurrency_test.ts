/**
 * Concurrency failures Postgres reports are answered as a busy database (503), not a 500: the
 * transaction was rolled back whole, and the client may try again.
 */
import assert from "node:assert/strict";
import { openDatabase, translateDbError } from "./db.ts";
import { ServiceUnavailableError } from "./errors.ts";
import { testDatabase } from "./testing.ts";

Deno.test("[db] a transaction Postgres ends to break a deadlock is a 503 saying nothing changed", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "demo", max: 2 });
  try {
    await sql`create table rows (id int primary key, n int)`;
    await sql`insert into rows values (1, 0), (2, 0)`;
    const bothHoldOne = Promise.withResolvers<void>();
    let holding = 0;
    const lockInOrder = (first: number, second: number) =>
      sql.begin(async (tx) => {
        await tx`update rows set n = n + 1 where id = ${first}`;
        if (++holding === 2) bothHoldOne.resolve();
        await bothHoldOne.promise;
        await tx`update rows set n = n + 1 where id = ${second}`;
      });
    const outcomes = await Promise.allSettled([lockInOrder(1, 2), lockInOrder(2, 1)]);
    const failed = outcomes.filter((outcome) => outcome.status === "rejected");
    assert.equal(failed.length, 1, "Postgres ends one of the two");
    const error = (failed[0] as PromiseRejectedResult).reason;
    assert.equal(error.code, "40P01");
    const translated = translateDbError(error);
    assert.ok(translated instanceof ServiceUnavailableError, String(translated));
    assert.match(translated.message, /nothing was changed; try again/);
    const rows = await sql<{ n: number }[]>`select n from rows order by id`;
    assert.deepEqual(rows.map((row) => row.n), [1, 1], "the other one's change alone");
  } finally {
    await sql.end();
  }
});

Deno.test("[db] a serializable transaction that cannot be serialized is a 503 too", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: "demo", max: 2 });
  try {
    await sql`create table doctors (name text primary key, on_call boolean)`;
    await sql`insert into doctors values ('a', true), ('b', true)`;
    const bothRead = Promise.withResolvers<void>();
    let read = 0;
    // Write skew: each sees two on call and takes one off; serialized, the second could not.
    const goOff = (name: string) =>
      sql.begin("isolation level serializable", async (tx) => {
        await tx`select count(*) from doctors where on_call`;
        if (++read === 2) bothRead.resolve();
        await bothRead.promise;
        await tx`update doctors set on_call = false where name = ${name}`;
      });
    const outcomes = await Promise.allSettled([goOff("a"), goOff("b")]);
    const failed = outcomes.filter((outcome) => outcome.status === "rejected");
    assert.equal(failed.length, 1, "Postgres refuses one of the two");
    const error = (failed[0] as PromiseRejectedResult).reason;
    assert.equal(error.code, "40001");
    assert.ok(translateDbError(error) instanceof ServiceUnavailableError);
  } finally {
    await sql.end();
  }
});
