/**
 * The one rule for reading a client's date-time, in request bodies and in `filter` values: the
 * grammar of the original's marshmallow 2 (its `_iso8601_re`): `T` or a space between date and
 * time (Python's `str(datetime)`), seconds optional, one-digit fields, and an offset with or
 * without a colon or minutes (`+05:30`, `+0530`, `+05`). No zod here: the query parser uses it.
 *
 * @example
 * ```ts
 * import { readDateTime } from "@shared/date_time.ts";
 * readDateTime("2026-5-1 9:05+0530", "refused"); // 2026-05-01T03:35:00.000Z
 * readDateTime("2026-05-01 09:05", "refused"); // undefined: no offset
 * readDateTime("2026-05-01 09:05", "utc"); // 2026-05-01T09:05:00.000Z
 * readDateTime("2026-05-01", "utc"); // 2026-05-01T00:00:00.000Z
 * ```
 */

const FORM =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * What a date-time without an offset means: `"refused"` in bodies (a naive time in an event with
 * its own timezone is ambiguous), `"utc"` in filters (the original's Postgres session read it
 * so), where a date alone is also taken, as its midnight.
 */
export type NaiveDateTime = "refused" | "utc";

/** Minutes east of UTC an offset names (`Z`, `+05:30`, `+0530`, `+05`), undefined out of range. */
function offsetMinutes(zone: string): number | undefined {
  if (zone === "Z") return 0;
  const hours = Number(zone.slice(1, 3));
  const minutes = zone.length > 3 ? Number(zone.slice(-2)) : 0;
  if (hours > 23 || minutes > 59) return undefined;
  return (zone[0] === "-" ? -1 : 1) * (hours * 60 + minutes);
}

/**
 * The instant `text` names, or undefined when it is not of the grammar or names no time (month
 * 13, February 30, hour 24, second 60, offset +24:00), rather than one rolled over to another.
 * Fractions beyond milliseconds are cut. The year may be 0 to 9999 as written: whether the
 * instant fits the database is `inStoredYears`'s to say, so a body can say why it did not.
 */
export function readDateTime(text: string, naive: NaiveDateTime): Date | undefined {
  const match = FORM.exec(text);
  if (match === null) return undefined;
  const [, y, mo, d, h, mi = "0", s = "0", fraction = "", zone] = match;
  if (naive === "refused" && zone === undefined) return undefined;
  const offset = zone === undefined ? 0 : offsetMinutes(zone);
  const [year, month, day] = [Number(y), Number(mo), Number(d)];
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, takes years 0–99 as they are.
  date.setUTCFullYear(year, month, 0);
  const valid = month >= 1 && month <= 12 && day >= 1 && day <= date.getUTCDate() &&
    Number(h ?? 0) <= 23 && Number(mi) <= 59 && Number(s) <= 59 && offset !== undefined;
  if (!valid) return undefined;
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(
    Number(h ?? 0),
    Number(mi),
    Number(s),
    Number(fraction.slice(0, 3).padEnd(3, "0")),
  );
  return new Date(date.getTime() - offset * 60_000);
}

/** Whether an instant lies in the years Postgres timestamps hold, 1 to 9999 (in UTC). */
export function inStoredYears(date: Date): boolean {
  const year = date.getUTCFullYear();
  return year >= 1 && year <= 9999;
}
