import assert from "node:assert/strict";
import { describeStartFailure } from "./lifecycle.ts";

// Found by an operator review (2026-12-06): both ended with the bare error, naming no setting.
Deno.test("[lifecycle] a start-up failure a user can cause names the setting to fix", async (t) => {
  await t.step("a database host no route leads to", () => {
    // As postgres.js rejects it (Node's net error, with its code).
    const error = Object.assign(new Error("connect EHOSTUNREACH 192.0.2.77:5432"), {
      code: "EHOSTUNREACH",
    });
    assert.equal(
      describeStartFailure("open the database", error, {
        url: "postgres://app:pw-SECRET@192.0.2.77:5432/open_event",
        setting: "AUDIT_DATABASE_URL",
      }),
      "Cannot open the database at 192.0.2.77:5432: no route leads there from this machine. " +
        "Check the host in AUDIT_DATABASE_URL, and the network to it.",
    );
  });
  await t.step("a database user without a right the start needs", () => {
    // As postgres.js rejects it (the server's error, with its SQLSTATE).
    const error = Object.assign(new Error("permission denied to create database"), {
      code: "42501",
    });
    assert.equal(
      describeStartFailure("open the database", error, {
        url: "postgres://app:pw-SECRET@127.0.0.1:5432/open_event",
      }),
      "Cannot open the database at 127.0.0.1:5432: its user lacks a right (permission denied " +
        "to create database). Grant it, or create what it names first, or put a user that has " +
        "it in DATABASE_URL.",
    );
  });
  await t.step("a password with a bare %", () => {
    // What postgres.js throws decoding the password `50%off`.
    const error = (() => {
      try {
        decodeURIComponent("50%off");
      } catch (error) {
        return error;
      }
    })();
    const line = describeStartFailure("open the database", error, {
      url: "postgres://app:50%off@127.0.0.1:5432/open_event",
    });
    assert.match(line, /^Cannot open the database at 127\.0\.0\.1:5432: the URL is malformed/);
    assert.match(line, /Correct DATABASE_URL\.$/);
    assert.doesNotMatch(line, /50%off/);
  });
  // A review (2026-12-06): the list was cut at its first comma, which lay inside the password.
  await t.step("a database URL of several hosts, a password with a comma", () => {
    const error = Object.assign(new Error("connect ECONNREFUSED 10.0.0.2:5432"), {
      code: "ECONNREFUSED",
    });
    const line = describeStartFailure("open the database", error, {
      url: "postgres://app:12,34-SECRET@10.0.0.1:5432,10.0.0.2:5432/open_event",
    });
    assert.match(line, /^Cannot open the database at 10\.0\.0\.1:5432,10\.0\.0\.2:5432: /);
    assert.doesNotMatch(line, /SECRET|12,34/);
  });
});
