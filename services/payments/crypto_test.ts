import assert from "node:assert/strict";
import { createSecretBox, parseEncryptionKey } from "./crypto.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));

Deno.test("[payments] parseEncryptionKey reads base64 and hex, refuses anything else", async (t) => {
  await t.step("32 bytes as base64", () => {
    assert.equal(parseEncryptionKey(KEY).length, 32);
  });
  await t.step("64 hex digits", () => {
    assert.deepEqual(parseEncryptionKey("07".repeat(32)), new Uint8Array(32).fill(7));
  });
  await t.step("wrong length or not base64, without echoing the key", () => {
    for (const bad of [btoa("short"), "not base64 !!", "07".repeat(31)]) {
      assert.throws(() => parseEncryptionKey(bad), (error: Error) => {
        assert.match(error.message, /^Cannot read PAYMENTS_ENCRYPTION_KEY/);
        assert.ok(!error.message.includes(bad));
        return true;
      });
    }
  });
});

Deno.test("[payments] SecretBox seals with a fresh IV and opens only in its context", async () => {
  const box = await createSecretBox(KEY);
  const a = await box.seal("sk_live_secret", "access_token:event:1");
  const b = await box.seal("sk_live_secret", "access_token:event:1");
  assert.notDeepEqual(a, b, "a random IV per value");
  assert.equal(a[0], 1, "version byte");
  assert.ok(!new TextDecoder().decode(a).includes("sk_live_secret"));
  assert.equal(await box.open(a, "access_token:event:1"), "sk_live_secret");
  await assert.rejects(() => box.open(a, "access_token:event:2"), /Cannot open a sealed secret/);
  const tampered = Uint8Array.from(a);
  tampered[tampered.length - 1] ^= 1;
  await assert.rejects(() => box.open(tampered, "access_token:event:1"), /tampered/);
  const other = await createSecretBox("00".repeat(32));
  await assert.rejects(() => other.open(a, "access_token:event:1"), /wrong key/);
});

Deno.test("[payments] SecretBox.digest is stable per key and differs across keys", async () => {
  const box = await createSecretBox(KEY);
  const other = await createSecretBox("00".repeat(32));
  assert.equal(await box.digest("acct_1"), await box.digest("acct_1"));
  assert.notEqual(await box.digest("acct_1"), await box.digest("acct_2"));
  assert.notEqual(await box.digest("acct_1"), await other.digest("acct_1"));
  assert.match(await box.digest("acct_1"), /^[0-9a-f]{64}$/);
});
