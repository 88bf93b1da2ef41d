import assert from "node:assert/strict";
import { LinePace, redact, scrub } from "./log.ts";

Deno.test("[log] redact hides secret-looking fields at any depth", () => {
  const out = redact({
    user: { email: "a@example.com", password: "hunter2", nested: { access_token: "t" } },
    headers: [{ Authorization: "JWT x" }],
    stripeAuthCode: "ac_123",
    count: 3,
  });
  const text = JSON.stringify(out);
  for (const secret of ["hunter2", "JWT x", "ac_123", '"t"']) assert.ok(!text.includes(secret));
  assert.ok(text.includes("a@example.com"));
  assert.ok(text.includes('"count":3'));
});

Deno.test("[log] scrub removes URL passwords and secret assignments from free text", () => {
  const text = scrub(
    "Cannot connect to postgres://admin:hunter2@db/x; retry with password=s3cret&token=abc",
  );
  for (const secret of ["hunter2", "s3cret", "abc"]) assert.ok(!text.includes(secret), text);
  assert.ok(text.includes("postgres://admin:[redacted]@db/x"));
});

/** The JSON lines `code` (a module importing ./log.ts) writes on stderr, run in its own process. */
async function linesOf(code: string): Promise<Record<string, unknown>[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-lock", code],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "null",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stderr).trim().split("\n").map((line) => JSON.parse(line));
}

Deno.test("[log] createLogger leaves out an error field that is undefined", async () => {
  const [without, withError] = await linesOf(`
    import { createLogger } from "@shared/log.ts";
    const log = createLogger("t");
    log.warn("fact consumer stalled; pulling again", { reason: "r", error: undefined });
    log.warn("failed", { error: new Error("boom") });
  `);
  assert.equal(without.reason, "r");
  assert.ok(!("error" in without), JSON.stringify(without));
  assert.deepEqual(withError.error, { name: "Error", message: "boom" });
});

// Found by a review: a word boundary before the bare names let every snake_case one through.
Deno.test("[log] scrub finds secrets under longer names and in header or JSON form", () => {
  const cases = [
    "access_token=AT1",
    "client_secret=CS1&code=x",
    "refresh_token=RT1",
    "jwt_secret=JS1",
    "stripe_secret_key=SK1",
    "DATABASE_PASSWORD=PW3",
    "PGPASSWORD=PW4",
    "Authorization: Bearer BX1",
    'authorization: "Bearer BX1"',
    '{"authorization":"Bearer BX1"}',
    '{"password":"PW2"}',
    'password="PW6"',
    "JWT_SECRET='PW7'",
    "redis://:PW5@h",
  ];
  for (const text of cases) {
    const out = scrub(text);
    assert.ok(!/AT1|CS1|RT1|JS1|SK1|PW\d|BX1/.test(out), `${text} -> ${out}`);
    assert.ok(out.includes("[redacted]"), out);
  }
  // The review of that change: messages that name secrets without holding one stay readable.
  for (
    const text of [
      "no secret here: 5 tickets",
      "Cannot open a sealed secret: wrong key, context or tampered value",
      "Cannot change the password: it changed meanwhile",
      "Invalid token: jwt expired",
      "Invalid authorization: expected Bearer scheme",
      "Unexpected token: ] in JSON",
      "tokens: 12, max_tokens=500, bypass=true, passengers: 3",
      '{"stripe-authorization":{"type":"x"}}',
    ]
  ) {
    assert.equal(scrub(text), text);
  }
});

// Found by a review: a token where none belongs (a client's `/v1/activities/<token>`) reached the
// gateway's access line as it came, at the default level: `path` named no secret.
Deno.test("[log] scrub hides a JWT wherever it stands, with or without a name before it", async () => {
  const header = btoa(JSON.stringify({ alg: "HS256", typ: "JWT" })).replace(/=+$/, "");
  const claims = btoa(JSON.stringify({ sub: "1", ver: 0 })).replace(/=+$/, "");
  const jwt = `${header}.${claims}.x-Yz_09AbCdEfGhIjKlMnOp`;
  for (
    const text of [
      `/v1/activities/${jwt}`,
      `Cannot find activity "${jwt}"`,
      `Cannot filter: id takes bigint values, got "${jwt}"`,
      `${jwt}`,
      `${header}.${claims}.`,
    ]
  ) {
    const out = scrub(text);
    assert.ok(!out.includes(claims), `${text} -> ${out}`);
    assert.ok(out.includes("[redacted]"), out);
  }
  const [line] = await linesOf(`
    import { createLogger } from "@shared/log.ts";
    createLogger("gateway").info("request", { method: "GET", path: "/v1/activities/${jwt}" });
  `);
  assert.equal(line.path, "/v1/activities/[redacted]");
  // Base64 that is no JWT stays.
  for (const text of ["eyJhbGciOiJ", "version 1.2.3", "a.b.c"]) assert.equal(scrub(text), text);
});

// Found by a hostile-input hunt: the URL and JWT patterns restarted at every letter of a long run,
// so scrubbing took quadratic time. A 60 KB path (the gateway takes targets up to 64 KiB) held the
// gateway's event loop for 4 s in its access line, at the default level, for an anonymous client.
Deno.test("[log] scrub takes linear time on long runs of what a URL or a JWT starts with", () => {
  const size = 64 * 1024;
  for (
    const [name, unit] of [
      ["letters", "x"],
      ["dotted words", "a."],
      ["a scheme's letters and dashes", "a-b+"],
      ["JWT starts joined by dashes", "eyJ-"],
      ["JWT starts joined by dots", "eyJ."],
    ]
  ) {
    const text = unit.repeat(size / unit.length);
    const started = performance.now();
    assert.equal(scrub(text), text);
    const ms = performance.now() - started;
    // Linear: a few milliseconds; it was 2–5 s for each of these.
    assert.ok(ms < 500, `${name}: ${ms.toFixed(0)} ms for ${size} characters`);
  }
  // Still found after a long run, and where the scheme's run starts with no letter.
  for (const text of ["1postgres://u:pw@h", "-redis://:pw@h", "x.amqp+ssl://u:pw@h"]) {
    assert.ok(scrub(text).endsWith(":[redacted]@h"), scrub(text));
  }
  assert.equal(
    scrub(`${"x".repeat(size)} postgres://u:pw@h`),
    `${"x".repeat(size)} postgres://u:[redacted]@h`,
  );
  assert.ok(!scrub(`${"eyJ-".repeat(size / 4)} eyJa.eyJb.c`).endsWith("eyJa.eyJb.c"));
});

// Found by a review of the linear JWT pattern: its header stopped at each `-eyJ`, and a header
// ending in one left a piece too short to be a header itself, so the whole token stayed as it came.
Deno.test("[log] scrub hides a JWT whose header ends in -eyJ from there on", () => {
  for (const header of ["eyJhbGci-eyJ", "eyJ-eyJ", "eyJa-eyJb-eyJ"]) {
    const text = `/v1/activities/${header}.eyJzdWIiOiIx.c2ln`;
    const out = scrub(text);
    assert.ok(!out.includes("eyJzdWIiOiIx"), `${text} -> ${out}`);
    assert.ok(out.endsWith("-[redacted]"), out);
  }
});

Deno.test("[log] LinePace: a line once per interval, per kind, again once the interval passed", async () => {
  const pace = new LinePace(80);
  assert.equal(pace.due(), true, "the first line goes");
  assert.equal(pace.due(), false, "not again at once");
  assert.equal(pace.due("subject a"), true, "another kind has its own pace");
  assert.equal(pace.due("subject a"), false);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(pace.due(), true, "again after the interval");
  assert.equal(pace.due("subject a"), true);
});
