import assert from "node:assert/strict";
import { dummyHash, hashPassword, verifyPassword } from "./passwords.ts";

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

Deno.test("[catalog] dummyHash is a well-formed hash of the given rounds that nothing matches", async () => {
  const stored = dummyHash(1000);
  const [scheme, rounds, salt, hash] = stored.split("$");
  assert.equal(scheme, "pbkdf2-sha256");
  assert.equal(rounds, "1000");
  assert.equal(atob(salt).length, 16);
  assert.equal(atob(hash).length, 32);
  for (const password of ["", "password", "correct horse"]) {
    assert.equal(await verifyPassword(password, stored), false);
  }
});
