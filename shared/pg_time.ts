/**
 * Reading Postgres' `timestamptz` text (`0005-03-01 00:00:00+00`, `2026-12-02 03:53:00.123+05:30`)
 * into a `Date` exactly. postgres.js hands it to `new Date(text)`, and V8's legacy parser takes
 * years 1–99 for two-digit years and swaps month and day: year 5 came back as 2001, years 13–31
 * as an Invalid Date (a 500) — a review stored `0005-03-01` and read `2001-05-03`.
 *
 * @example
 * ```ts
 * import { parseTimestamptz } from "@shared/pg_time.ts";
 * parseTimestamptz("0005-03-01 00:00:00+00").toISOString(); // "0005-03-01T00:00:00.000Z"
 * ```
 */

const TIMESTAMPTZ =
  /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

/** The instant Postgres' text for a `timestamptz` names (anything else as `new Date` reads it). */
export function parseTimestamptz(text: string): Date {
  const m = TIMESTAMPTZ.exec(text);
  if (m === null) return new Date(text); // "infinity", or a form this does not know
  const [, y, mo, d, h, mi, s, fraction, sign, oh, om, os, bc] = m;
  const year = bc ? 1 - Number(y) : Number(y);
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, takes years 0–99 as they are.
  date.setUTCFullYear(year, Number(mo) - 1, Number(d));
  const ms = fraction ? Math.floor(Number(`0.${fraction}`) * 1000) : 0;
  date.setUTCHours(Number(h), Number(mi), Number(s), ms);
  const offsetS = Number(oh) * 3600 + Number(om ?? 0) * 60 + Number(os ?? 0);
  return new Date(date.getTime() - (sign === "-" ? -1 : 1) * offsetS * 1000);
}
