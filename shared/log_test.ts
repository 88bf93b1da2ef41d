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
