import assert from "node:assert/strict";
import { hashPassword, verifyPassword } from "./passwords.ts";

Deno.test("[catalog] hashPassword makes salted hashes that verifyPassword accepts", async () => {
  const one = await hashPassword("correct horse", 1000);
  const two = await hashPassword("correct horse", 1000);
  assert.notEqual(one, two, "salted");
  assert.ok(!one.includes("correct horse"));
  assert.equal(await verifyPassword("correct horse", one), true);
  assert.equal(await verifyPassword("wrong horse", one), false);
});

Deno.test("[catalog] verifyPassword refuses malformed stored hashes", async () => {
  for (const stored of ["", "plain", "pbkdf2-sha256$x$y$z", "md5$1$a$b"]) {
    assert.equal(await verifyPassword("anything", stored), false);
  }
});
