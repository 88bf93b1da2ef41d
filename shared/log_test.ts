import assert from "node:assert/strict";
import { redact, scrub } from "./log.ts";

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
