import assert from "node:assert/strict";
import {
  databaseOf,
  hostAndPort,
  hostCount,
  hostsOf,
  isPostgresUrl,
  parameterOf,
  withDatabase,
} from "./postgres_url.ts";

Deno.test("[shared] postgres URLs with several hosts are read and changed as written", () => {
  const many = "postgres://app:p%40ss@db1:5432,db2:5433/shop%20one?target_session_attrs=primary";
  assert.equal(databaseOf(many), "shop one");
  assert.equal(hostCount(many), 2);
  assert.equal(parameterOf(many, "target_session_attrs"), "primary");
  assert.equal(
    withDatabase(many, "postgres"),
    "postgres://app:p%40ss@db1:5432,db2:5433/postgres?target_session_attrs=primary",
  );
  // `new URL` refuses this one: the reason for the module.
  assert.throws(() => new URL(many));
});

Deno.test("[shared] postgres URLs with one host, or without a database", () => {
  assert.equal(databaseOf("postgres://postgres@127.0.0.1:5432/open_event"), "open_event");
  assert.equal(databaseOf("postgresql://localhost"), "postgres");
  assert.equal(hostCount("postgres://u@[::1]:5432/db"), 1);
  assert.equal(hostCount("postgres://u@a@b/db"), 1, "the last @ ends the login");
  assert.equal(parameterOf("postgres://localhost/db", "sslmode"), undefined);
  assert.equal(withDatabase("postgres://localhost", "x y"), "postgres://localhost/x%20y");
  assert.throws(() => databaseOf("not a url"), /Invalid URL/);
});

Deno.test("[shared] postgres URL hosts are named without the login", () => {
  assert.deepEqual(hostsOf("postgres://app:a,b@c@db1:5432,[::1]:6543/x"), [
    "db1:5432",
    "[::1]:6543",
  ]);
  assert.deepEqual(hostAndPort("[::1]:6543"), { hostname: "::1", port: 6543 });
  assert.deepEqual(hostAndPort("db1"), { hostname: "db1", port: 5432 });
  assert.ok(isPostgresUrl("postgresql://db/x") && !isPostgresUrl("nats://db:4222"));
  assert.throws(() => hostsOf("postgres://u@127.0.0.1:notaport/x"), TypeError);
  assert.deepEqual(hostsOf("postgres://u@h:5432\n"), ["h:5432"], "a file's last newline");
  assert.equal(databaseOf(" postgres://u@h:5432/db \n"), "db");
  assert.throws(() => hostsOf("postgres://u@a:5432,b:x/x"), /Invalid URL/);
});
