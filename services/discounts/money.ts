/**
 * Money in integer minor units (cents): amounts are parsed from decimal text, computed with
 * integers, and printed back as two-decimal strings, so no binary float ever touches a price.
 */

/** Largest amount numeric(12, 2) holds, in cents. */
const MAX_CENTS = 999_999_999_999;

/**
 * A non-negative decimal as lenientNumber reads one (`+5`, `5.`, `.5`), exact to the cent: digits
 * past the second decimal may only be zeros (`7.500`).
 */
const decimal = /^\+?(?=\.?\d)(\d{0,10})(?:\.(\d{0,2})0*)?$/;

/**
 * Cents of a non-negative decimal given as text ("12.5") or as a number (12.5); undefined when it
 * is not one (negative, a non-zero digit past the cents, exponent form, too large).
 */
export function toCents(value: string | number): number | undefined {
  const text = typeof value === "number"
    ? (Number.isFinite(value) ? String(value) : "")
    : value.trim();
  const match = decimal.exec(text);
  if (!match) return undefined;
  const cents = Number(match[1]) * 100 + Number((match[2] ?? "").padEnd(2, "0"));
  return cents <= MAX_CENTS ? cents : undefined;
}

/** "12.50" for 1250 (or 1250n: order totals are summed as BigInt so they never round). */
export function formatCents(cents: number | bigint): string {
  const value = BigInt(cents);
  const sign = value < 0n ? "-" : "";
  const abs = value < 0n ? -value : value;
  return `${sign}${abs / 100n}.${String(abs % 100n).padStart(2, "0")}`;
}

/** `percent` (in cents of a percent: 1250 = 12.5 %) of `cents`, rounded half-up to a cent. */
export function percentOf(cents: number, percentCents: number): number {
  // BigInt: a numeric(12, 2) price times 10_000 can pass 2^53.
  const scaled = BigInt(cents) * BigInt(percentCents); // in 1/10_000 of a cent
  return Number((scaled + 5_000n) / 10_000n);
}

/** The discount on one unit: `amount` flat (never more than the price), or `percent` of it. */
export function unitDiscount(
  priceCents: number,
  code: { type: "amount" | "percent"; valueCents: number },
): number {
  const off = code.type === "amount" ? code.valueCents : percentOf(priceCents, code.valueCents);
  return Math.min(off, priceCents);
}
