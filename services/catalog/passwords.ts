/**
 * Password hashing with PBKDF2-SHA256 from WebCrypto: no native dependency, and the iteration
 * count is stored with each hash so it can be raised later without breaking old hashes.
 * Format: `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`.
 */
const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as BufferSource, iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

export async function hashPassword(password: string, iterations: number): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await derive(password, salt, iterations);
  return `pbkdf2-sha256$${iterations}$${toBase64(salt)}$${toBase64(hash)}`;
}

/**
 * A well-formed hash of `iterations` rounds that no password matches (its salt and key are zero
 * bytes: a derived key equals it with chance 2^-256). Verifying against it costs what verifying
 * against a user's hash costs, so a login for an unknown email takes as long as a wrong password.
 */
export function dummyHash(iterations: number): string {
  return `pbkdf2-sha256$${iterations}$${toBase64(new Uint8Array(16))}$${
    toBase64(new Uint8Array(32))
  }`;
}

/** Constant-time comparison of the derived key with the stored one. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, rounds, salt, hash] = stored.split("$");
  const iterations = Number(rounds);
  if (scheme !== "pbkdf2-sha256" || !Number.isSafeInteger(iterations) || !salt || !hash) {
    return false;
  }
  const expected = fromBase64(hash);
  const actual = await derive(password, fromBase64(salt), iterations);
  let diff = expected.length ^ actual.length;
  for (let i = 0; i < expected.length; i++) diff |= expected[i] ^ (actual[i] ?? 0);
  return diff === 0;
}
