import assert from "node:assert/strict";
import { startTestSystem } from "@testing/system.ts";

/**
 * Counts the PBKDF2 derivations this process makes while `run` runs (the catalog runs in the
 * test's process), by their iteration counts: the work a login does, without timing it.
 */
async function pbkdf2Rounds(run: () => Promise<unknown>): Promise<number[]> {
  const subtle = crypto.subtle;
  const original = subtle.deriveBits;
  const rounds: number[] = [];
  Object.defineProperty(subtle, "deriveBits", {
    configurable: true,
    value: (algorithm: Pbkdf2Params, key: CryptoKey, length: number) => {
      if (algorithm.name === "PBKDF2") rounds.push(algorithm.iterations);
      return original.call(subtle, algorithm, key, length);
    },
  });
  try {
    await run();
  } finally {
    delete (subtle as { deriveBits?: unknown }).deriveBits;
  }
  return rounds;
}

Deno.test("[catalog] POST /v1/auth/login does the same PBKDF2 work for unknown, deleted and registered emails", async (t) => {
  await using system = await startTestSystem();
  const iterations = system.config.passwordIterations;
  const user = await system.signUp();
  const deleted = await system.signUp();
  const gone = await system.call("DELETE", `/v1/users/${deleted.id}`, { token: deleted.token });
  assert.equal(gone.status, 200);
  const login = (email: string, password: string) =>
    system.call("POST", "/v1/auth/login", {
      body: { email, password },
      headers: { "Content-Type": "application/json" },
    });
  const cases: Record<string, [string, string, number]> = {
    "a registered email with a wrong password": [user.email, "not the password", 401],
    "an unknown email": [`nobody-${crypto.randomUUID()}@example.test`, "any password", 401],
    "a soft-deleted user's email": [deleted.email, deleted.password, 401],
    "the right password": [user.email, user.password, 200],
  };
  for (const [name, [email, password, status]] of Object.entries(cases)) {
    await t.step(`${name}: one derivation of ${iterations} rounds, ${status}`, async () => {
      let answered = 0;
      const rounds = await pbkdf2Rounds(async () => {
        answered = (await login(email, password)).status;
      });
      assert.equal(answered, status);
      assert.deepEqual(rounds, [iterations]);
    });
  }
});
