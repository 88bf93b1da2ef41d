/**
 * Secrets at rest: AES-256-GCM through WebCrypto with `PAYMENTS_ENCRYPTION_KEY`.
 *
 * The key is 32 random bytes written as base64 (44 characters) or as 64 hex digits, e.g.
 * `openssl rand -base64 32`. Two keys are derived from it with HKDF, so the cipher key and the
 * lookup key are never the same material:
 * - the cipher key seals each value with a fresh random 96-bit IV; a sealed value is
 *   `version (1 byte) | IV (12 bytes) | ciphertext + tag`, and the caller's `context` (column and
 *   event) is bound in as additional data, so a value copied into another row or column fails
 *   to open;
 * - the lookup key makes an HMAC of a Stripe account id, which finds an authorization by account
 *   (webhooks) without storing the id in the clear, and of the code an authorization was last
 *   linked with, which recognises that code sent again without storing it (handlers/accounts.ts).
 *
 * Keys do not rotate: every stored value (and every lookup digest) is bound to the one key that
 * sealed it, and no older key is ever tried. Changing PAYMENTS_ENCRYPTION_KEY makes the stored
 * authorizations unreadable: PATCH and DELETE then answer 503 ("Cannot read the stored Stripe
 * keys: PAYMENTS_ENCRYPTION_KEY does not match") and webhooks no longer find their account.
 * Keep the key; to change it, unlink every event first (or have organizers link again).
 */

const VERSION = 1;
const IV_BYTES = 12;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads a 32-byte key written as 64 hex digits or base64; throws without echoing the key. */
export function parseEncryptionKey(text: string): Uint8Array<ArrayBuffer> {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) {
    return Uint8Array.from(trimmed.match(/../g)!, (pair) => parseInt(pair, 16));
  }
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Uint8Array.from(atob(trimmed), (c) => c.charCodeAt(0));
  } catch {
    throw new Error(
      "Cannot read PAYMENTS_ENCRYPTION_KEY: it must be 32 bytes as base64 or 64 hex digits",
    );
  }
  if (bytes.length !== 32) {
    throw new Error(
      `Cannot read PAYMENTS_ENCRYPTION_KEY: it holds ${bytes.length} bytes, AES-256 needs 32`,
    );
  }
  return bytes;
}

/** Seals and opens secrets, and makes lookup digests; one per process. */
export interface SecretBox {
  /** Encrypts `plain`; `context` (e.g. "access_token:event:7") must be given again to open. */
  seal(plain: string, context: string): Promise<Uint8Array<ArrayBuffer>>;
  /** Decrypts what `seal` made with the same context; throws when it was tampered with. */
  open(sealed: Uint8Array, context: string): Promise<string>;
  /** A keyed digest (hex) of `value`, equal for equal values: for lookups by a secret. */
  digest(value: string): Promise<string>;
}

async function derive(
  master: CryptoKey,
  info: string,
  algorithm: AesKeyGenParams | HmacImportParams,
  usages: KeyUsage[],
): Promise<CryptoKey> {
  return await crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: encoder.encode(info) },
    master,
    algorithm,
    false,
    usages,
  );
}

/**
 * A secret box for `keyText` (PAYMENTS_ENCRYPTION_KEY); throws when the key is malformed.
 *
 * @example
 * ```ts
 * import { createSecretBox } from "./crypto.ts";
 * const box = await createSecretBox(btoa("k".repeat(32)));
 * const sealed = await box.seal("sk_live_x", "access_token:event:1");
 * console.log(await box.open(sealed, "access_token:event:1")); // "sk_live_x"
 * ```
 */
export async function createSecretBox(keyText: string): Promise<SecretBox> {
  const master = await crypto.subtle.importKey(
    "raw",
    parseEncryptionKey(keyText),
    "HKDF",
    false,
    ["deriveKey"],
  );
  const cipherKey = await derive(master, "open-event payments: aes-256-gcm", {
    name: "AES-GCM",
    length: 256,
  }, ["encrypt", "decrypt"]);
  const lookupKey = await derive(master, "open-event payments: account lookup", {
    name: "HMAC",
    hash: "SHA-256",
    length: 256,
  }, ["sign"]);

  return {
    seal: (plain, context) => seal(cipherKey, plain, context),
    open: (sealed, context) => open(cipherKey, sealed, context),
    async digest(value) {
      const mac = await crypto.subtle.sign("HMAC", lookupKey, encoder.encode(value));
      return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
    },
  };
}

/** `VERSION`, the IV, then the AES-GCM ciphertext of `plain` bound to `context`. */
async function seal(
  cipherKey: CryptoKey,
  plain: string,
  context: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: encoder.encode(context) },
      cipherKey,
      encoder.encode(plain),
    ),
  );
  const sealed = new Uint8Array(1 + IV_BYTES + ciphertext.length);
  sealed[0] = VERSION;
  sealed.set(iv, 1);
  sealed.set(ciphertext, 1 + IV_BYTES);
  return sealed;
}

async function open(cipherKey: CryptoKey, sealed: Uint8Array, context: string): Promise<string> {
  if (sealed.length < 1 + IV_BYTES + 16 || sealed[0] !== VERSION) {
    throw new Error("Cannot open a sealed secret: unknown format");
  }
  const bytes = Uint8Array.from(sealed);
  try {
    const plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: bytes.subarray(1, 1 + IV_BYTES),
        additionalData: encoder.encode(context),
      },
      cipherKey,
      bytes.subarray(1 + IV_BYTES),
    );
    return decoder.decode(plain);
  } catch {
    throw new Error("Cannot open a sealed secret: wrong key, context or tampered value");
  }
}
