import assert from "node:assert/strict";
import { BadRequestError } from "@shared/errors.ts";
import { signStripePayload, timingSafeEqual, verifyStripeSignature } from "./webhook_signature.ts";

const SECRET = "whsec_test_secret";
const PAYLOAD = '{"id":"evt_1","type":"account.application.deauthorized"}';

Deno.test("[payments] verifyStripeSignature accepts a fresh signature of the exact body", async () => {
  const header = await signStripePayload(SECRET, PAYLOAD);
  await verifyStripeSignature({ payload: PAYLOAD, header, secret: SECRET });
  // Several v1 values (a secret being rolled): one match is enough.
  const now = Math.floor(Date.now() / 1000);
  const rolled = `t=${now},v1=${"ab".repeat(32)},` +
    (await signStripePayload(SECRET, PAYLOAD, now)).split(",")[1];
  await verifyStripeSignature({ payload: PAYLOAD, header: rolled, secret: SECRET });
});

Deno.test("[payments] verifyStripeSignature refuses bad, stale and missing signatures with 400", async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const cases: [string, string | undefined, string][] = [
    ["no header", undefined, PAYLOAD],
    ["no timestamp", "v1=abcd", PAYLOAD],
    ["no v1", `t=${now}`, PAYLOAD],
    ["another secret", await signStripePayload("whsec_other", PAYLOAD, now), PAYLOAD],
    ["another body", await signStripePayload(SECRET, PAYLOAD, now), PAYLOAD + " "],
    ["stale (6 minutes old)", await signStripePayload(SECRET, PAYLOAD, now - 360), PAYLOAD],
    ["from the future", await signStripePayload(SECRET, PAYLOAD, now + 360), PAYLOAD],
    ["not hex", `t=${now},v1=zz`, PAYLOAD],
  ];
  for (const [name, header, payload] of cases) {
    await t.step(name, async () => {
      await assert.rejects(
        () => verifyStripeSignature({ payload, header, secret: SECRET }),
        (error: Error) => {
          assert.ok(error instanceof BadRequestError);
          assert.match(error.message, /^Cannot accept the webhook/);
          return true;
        },
      );
    });
  }
  await t.step("inside the tolerance is fine", async () => {
    const header = await signStripePayload(SECRET, PAYLOAD, now - 290);
    await verifyStripeSignature({ payload: PAYLOAD, header, secret: SECRET });
  });
});

Deno.test("[payments] timingSafeEqual compares length and every byte", () => {
  assert.equal(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  assert.equal(timingSafeEqual(new Uint8Array([1]), new Uint8Array([1, 2])), false);
});
