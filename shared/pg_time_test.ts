import assert from "node:assert/strict";
import { parseTimestamptz } from "./pg_time.ts";

Deno.test("[db] timestamptz text is read as the instant it names, years 1–99 included", () => {
  const cases: [string, string][] = [
    ["0001-01-01 00:00:00+00", "0001-01-01T00:00:00.000Z"],
    ["0005-03-01 00:00:00+00", "0005-03-01T00:00:00.000Z"],
    ["0012-01-01 00:00:00+00", "0012-01-01T00:00:00.000Z"],
    ["0020-01-01 00:00:00+00", "0020-01-01T00:00:00.000Z"],
    ["0099-12-31 23:59:59+00", "0099-12-31T23:59:59.000Z"],
    ["2026-12-02 03:53:00.123456+00", "2026-12-02T03:53:00.123Z"],
    ["2026-12-02 09:23:00+05:30", "2026-12-02T03:53:00.000Z"],
    ["2026-12-01 22:53:00-05", "2026-12-02T03:53:00.000Z"],
    ["1900-01-01 00:00:00+00:09:21", "1899-12-31T23:50:39.000Z"],
    ["9999-12-31 23:59:59.999+00", "9999-12-31T23:59:59.999Z"],
  ];
  for (const [text, iso] of cases) assert.equal(parseTimestamptz(text).toISOString(), iso, text);
  assert.equal(parseTimestamptz("infinity").getTime(), NaN);
});
