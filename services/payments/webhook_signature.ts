/**
 * Stripe webhook signatures: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where
 * each v1 is HMAC-SHA256 over `"<t>.<raw body>"` with the endpoint's signing secret. Several v1
 * values appear while a secret is being rolled; one match is enough. The timestamp bounds
 * replays of a captured request to the tolerance window.
 */
import { BadRequestError } from "@shared/errors.ts";

/** Stripe's own libraries default to five minutes. */
export const TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();

async function hmac(secret: string, text: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
}

function hexBytes(text: string): Uint8Array | null {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(text)) return null;
  return Uint8Array.from(text.match(/../g)!, (pair) => parseInt(pair, 16));
}

/** Compares without an early exit, so the time taken says nothing about where bytes differ. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * The header value Stripe would send for `payload` at `timestamp` (seconds): for tests, the
 * fake Stripe and the Dredd hooks.
 *
 * @example
 * ```ts
 * import { signStripePayload } from "./webhook_signature.ts";
 * const header = await signStripePayload("whsec_x", '{"id":"evt_1"}', 1700000000);
 * console.log(header.startsWith("t=1700000000,v1=")); // true
 * ```
 */
export async function signStripePayload(
  secret: string,
  payload: string,
  timestamp = Math.floor(Date.now() / 1000),
): Promise<string> {
  const mac = await hmac(secret, `${timestamp}.${payload}`);
  const hex = Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
  return `t=${timestamp},v1=${hex}`;
}

export interface VerifyOptions {
  /** The body exactly as received. */
  payload: string;
  /** The `Stripe-Signature` header, if any. */
  header: string | undefined;
  secret: string;
}

function refuse(reason: string): never {
  throw new BadRequestError(`Cannot accept the webhook: ${reason}`, {
    header: "Stripe-Signature",
  });
}

/**
 * Throws a 400 unless `header` carries a valid, fresh signature of `payload`.
 *
 * @example
 * ```ts
 * import { signStripePayload, verifyStripeSignature } from "./webhook_signature.ts";
 * const payload = '{"id":"evt_1"}';
 * const header = await signStripePayload("whsec_x", payload);
 * await verifyStripeSignature({ payload, header, secret: "whsec_x" });
 * ```
 */
export async function verifyStripeSignature(options: VerifyOptions): Promise<void> {
  if (!options.header) refuse("the Stripe-Signature header is missing");
  let timestamp: number | undefined;
  const signatures: Uint8Array[] = [];
  for (const part of options.header.split(",")) {
    const at = part.indexOf("=");
    if (at < 1) continue;
    const name = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (name === "t" && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (name === "v1") {
      const bytes = hexBytes(value);
      if (bytes) signatures.push(bytes);
    }
  }
  if (timestamp === undefined) refuse("the signature has no timestamp");
  if (!signatures.length) refuse("the signature has no v1 value");
  if (Math.abs(Math.floor(Date.now() / 1000) - timestamp) > TOLERANCE_SECONDS) {
    refuse("the signature's timestamp is outside the tolerance window");
  }
  const expected = await hmac(options.secret, `${timestamp}.${options.payload}`);
  // Check every candidate so the time taken does not depend on which one matched.
  let matched = false;
  for (const signature of signatures) {
    if (timingSafeEqual(signature, expected)) matched = true;
  }
  if (!matched) refuse("the signature does not match the payload");
}
