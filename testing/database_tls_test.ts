/**
 * A database URL that asks for TLS (`sslmode=require`) at a Postgres without it: the start line
 * names the setting to change (an operator review, 2026-12-06: the bare "Client network socket
 * disconnected before secure TLS connection was established"). A private server, which initdb
 * makes without TLS whatever the shared one has.
 */
import assert from "node:assert/strict";
import { openDatabase } from "@shared/db.ts";
import { describeStartFailure } from "@shared/lifecycle.ts";
import { startPostgresServer } from "./postgres_server.ts";

Deno.test("[tls] sslmode=require at a Postgres without TLS names DATABASE_URL", async () => {
  await using server = await startPostgresServer();
  const url = `${server.url}?sslmode=require`;
  const error = await openDatabase(url, { schema: "audit" }).then(
    (sql) => sql.end().then(() => assert.fail("it connected without TLS")),
    (error) => error,
  );
  assert.equal(
    describeStartFailure("open the database", error, { url }),
    `Cannot open the database at 127.0.0.1:${server.port}: it closed the connection where TLS ` +
      "was to begin (a server without TLS?). Turn TLS on in that server, or drop " +
      "sslmode=require (or ssl=true) from DATABASE_URL.",
  );
});
